"""aimctl.api"""
