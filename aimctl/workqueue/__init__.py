"""aimctl.workqueue"""
