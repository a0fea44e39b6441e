"""Logging for the ``aimctl`` process: structlog, JSON in a cluster, a readable console locally.

One renderer for two sources, so every line on stderr has the same shape:

- structlog calls (all of aimctl) run the shared processors, then the renderer, and are written
  straight to the stream (structlog's fast path: a disabled level costs one method call);
- stdlib ``logging`` records (aiohttp, kubernetes-asyncio, asyncio, warnings) go through a
  :class:`structlog.stdlib.ProcessorFormatter` on the root handler: the same processors as its
  ``foreign_pre_chain``, then ``remove_processors_meta`` (drops the ``_record`` and
  ``_from_structlog`` bookkeeping keys) and the renderer.

A JSON line therefore holds exactly ``event``, ``level``, ``logger``, ``timestamp`` (plus
``exception`` with a traceback) and the keys the caller bound or passed: every reconcile binds
``controller``, ``namespace``, ``name`` and ``reconcileID`` (controller-runtime's keys) through
``structlog.contextvars``, so lines from library code that knows nothing about the request
carry them too.

Levels: aimctl's own lines are filtered at ``level``; third-party stdlib loggers at ``level`` but
never below ``warning`` (their info/debug chatter is not the operator's story).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import orjson
import structlog

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["json", "console"]


def configure_logging(
    fmt: LogFormat = "console", level: str | int = "info", *, stream: TextIO | None = None
) -> None:
    """Configure structlog and route stdlib logging through the same renderer, to ``stream``
    (default ``sys.stderr``). Call once, before the first line is logged: structlog caches each
    logger's configuration on first use."""
    out = sys.stderr if stream is None else stream
    lvl = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,  # a stdlib record's name, or our logger's (below)
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.typing.Processor
    if fmt == "json":
        # A traceback as data, without frame locals: they can hold tokens and whole objects.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=_NamedPrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(lvl, logging.WARNING))


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that knows the name it was asked for, so ``add_logger_name`` can report it
    (structlog's PrintLoggerFactory drops the name)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        # structlog.get_logger("aimctl.run") passes the name; an unnamed logger is "aimctl".
        name = args[0] if args and isinstance(args[0], str) else "aimctl"
        return _NamedPrintLogger(self._file, name)


def _dumps(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()
