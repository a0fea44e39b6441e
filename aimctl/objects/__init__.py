"""aimctl.objects"""
