"""Logging set-up for programs built on aimctl: :func:`configure_logging` (see
:mod:`aimctl._logging` for the line format and the level rules)."""

from __future__ import annotations

from aimctl._logging import LogFormat as LogFormat, configure_logging as configure_logging

__all__ = ["LogFormat", "configure_logging"]
