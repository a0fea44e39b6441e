"""aimctl.controller"""
