"""aimctl.informers"""
