"""aimctl.envtest"""
