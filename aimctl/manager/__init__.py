"""aimctl.manager"""
