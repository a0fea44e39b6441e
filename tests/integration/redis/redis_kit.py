"""A real ``redis-server`` started exactly as the operator renders a cache's Redis: the helpers
(the fixtures are in ``conftest.py``).

The StatefulSet and Secret come from ``reconcilers/kvcache/_desired.py``; the Redis container's
env is resolved the way the kubelet does (``secretKeyRef`` from the rendered Secret) and its
``args`` expanded with it (:func:`expand_kubelet_vars`); only two values are mapped to this
machine, each checked to be what the pod would use first: ``--dir /data`` becomes a temporary
directory and ``--port 6379`` a free port. Nothing else is added or dropped, so an option
redis-server rejects makes it exit and the test fail (never skip).

Needs ``redis-server`` and ``redis-cli`` (Debian: ``apt-get install redis-server``). Without
them the tests skip, or fail under ``AIMCTL_REQUIRE_INTEGRATION=1``. Debian ships 7.0.x; the
operator's image is 7.2.x, which accepts every option 7.0 does.

Clients speak RESP over a socket (:class:`Resp`): the project does not depend on a Redis client.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.reconcilers.kvcache import _desired as desired

START_TIMEOUT = 30.0  # generous: the machine is shared


# --- kubelet rules ---------------------------------------------------------------------------


def expand_kubelet_vars(args: list[str], env: Mapping[str, str]) -> list[str]:
    """``args`` as the kubelet hands them to the container runtime: each ``$(NAME)`` replaced
    by the container's env var NAME; a reference to an undefined variable stays as written;
    ``$$`` is a literal ``$``; any other ``$`` is kept. Exec probe commands are *not* expanded.

    The rule of k8s.io/kubernetes third_party/forked/golang/expansion/expand.go (``Expand``,
    ``tryReadVariableName``; ``MappingFuncFor`` returns ``$(NAME)`` for an unknown NAME).
    """
    return [_expand(arg, env) for arg in args]


def _expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":  # escaped operator
            out.append("$")
            i += 2
        elif nxt == "(" and (close := text.find(")", i + 2)) != -1:
            name = text[i + 2 : close]
            out.append(env.get(name, f"$({name})"))
            i = close + 1
        else:  # "$x" or an unclosed "$(": the operator and the next character, as written
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


def container_env(container: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: ``value`` entries expanded with
    the entries before them, ``secretKeyRef`` entries read from ``secret`` (base64 ``data``).
    A reference to another Secret, or to a key ``secret`` lacks, fails: the kubelet would not
    start the container either (CreateContainerConfigError)."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = _expand(var["value"], env)
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"], ref
        env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return env


# --- RESP ------------------------------------------------------------------------------------


class RespError(Exception):
    """An error reply (``-ERR ...``, ``-NOAUTH ...``, ``-OOM ...``)."""


class Resp:
    """A minimal RESP2 client: one connection, one command at a time."""

    def __init__(self, port: int, *, source: str | None = None, timeout: float = 10.0) -> None:
        self._sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self._file = self._sock.makefile("rb")

    def call(self, *args: str | bytes | int) -> Any:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        out = [b"*%d\r\n" % len(parts)]
        for p in parts:
            out += [b"$%d\r\n" % len(p), p, b"\r\n"]
        self._sock.sendall(b"".join(out))
        return self._read()

    def _read(self) -> Any:
        line = self._file.readline()
        if not line:
            raise ConnectionError("connection closed by redis-server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError(f"not RESP: {line!r}")

    def info(self, section: str) -> dict[str, str]:
        text: bytes = self.call("INFO", section)
        return dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line[:64])

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Resp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the rendered server ---------------------------------------------------------------------


class RedisStartError(Exception):
    """redis-server exited or never answered; the message holds its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def localize(args: list[str], data_dir: Path, port: int) -> list[str]:
    """``args`` with the pod's ``--dir /data`` and ``--port 6379`` mapped to this machine."""
    out = list(args)
    for flag, in_pod, here in (("--dir", "/data", str(data_dir)), ("--port", "6379", str(port))):
        i = out.index(flag)
        assert out[i + 1] == in_pod, (flag, out[i + 1])
        out[i + 1] = here
    return out


@dataclass
class RenderedRedis:
    """redis-server run from a cache's rendered StatefulSet and Secret."""

    server: str
    cache: AIMKVCache
    statefulset: dict[str, Any]
    secret: dict[str, Any]
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    # Appended to the rendered command line by a test that needs a server-side condition
    # (redis-server's testing options); empty for every check of the rendered configuration.
    extra_args: list[str] = field(default_factory=list)

    @property
    def container(self) -> dict[str, Any]:
        c: dict[str, Any] = self.statefulset["spec"]["template"]["spec"]["containers"][0]
        assert c["name"] == "redis"
        return c

    @property
    def env(self) -> dict[str, str]:
        return container_env(self.container, self.secret)

    @property
    def password(self) -> str:
        return base64.b64decode(self.secret["data"][desired.AUTH_SECRET_KEY]).decode()

    @property
    def argv(self) -> list[str]:
        """The command line: the rendered command and args, kubelet-expanded, localized."""
        c = self.container
        assert c["command"] == ["redis-server"]
        args = localize(expand_kubelet_vars(c["args"], self.env), self.data_dir, self.port)
        return [self.server, *args, *self.extra_args]

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self) -> None:
        """Start redis-server and wait until it answers. Raises RedisStartError with its log
        if it exits first."""
        assert self.proc is None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RedisStartError(
                    f"redis-server exited with {code}:\n{self.log.read_text(errors='replace')}"
                )
            try:
                # Unauthenticated: up means it answers, PONG or NOAUTH, and is not -LOADING.
                with self.client(authenticate=False) as c:
                    c.call("PING")
                    return
            except RespError as e:
                if str(e).startswith("NOAUTH"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RedisStartError(f"no answer in {START_TIMEOUT}s:\n{self.log.read_text()}")
            time.sleep(0.05)

    def client(self, *, authenticate: bool = True, source: str | None = None) -> Resp:
        c = Resp(self.port, source=source)
        if authenticate and self.password:
            c.call("AUTH", self.password)
        return c

    def stop(self) -> None:
        """Stop as the kubelet does: SIGTERM (Redis saves per its persistence, then exits)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def probe(
        self, kind: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the rendered exec probe as the kubelet would: no shell, the container's env (or
        ``env``), ``-p`` pointing redis-cli at this server's port."""
        command = list(self.container[kind]["exec"]["command"])
        assert command[0] == "redis-cli" and "-p" not in command
        command[1:1] = ["-p", str(self.port)]
        return subprocess.run(
            command,
            env={"PATH": os.environ["PATH"], **(self.env if env is None else env)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


# ``render_redis(spec, *, password=None)`` (the fixture in conftest.py).
RenderRedis = Callable[..., RenderedRedis]
