"""pytest plugin: control-plane fixtures (filled in by the envtest work)."""
