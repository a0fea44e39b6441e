"""Shared test configuration. Control-plane fixtures come from the aimctl.envtest pytest plugin."""
