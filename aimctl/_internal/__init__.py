"""Small utilities shared by the library packages. Nothing here is public API."""
