"""aimctl.client"""
