"""Examples built on aimctl; each is a package runnable with ``python -m examples.<name>``."""
