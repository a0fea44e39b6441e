"""aimctl.reconcilers"""
