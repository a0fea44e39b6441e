# syntax=docker/dockerfile:1
# The aimctl operator image: `aimctl run` as a non-root user on a read-only root filesystem.
#
#   make docker-build                 # docker build -t aimctl:dev .
#
# Base image: Python 3.11 on Debian bookworm, pinned by patch release. The multi-arch index
# digest of this tag as published (check before relying on it, and after every rebuild of the
# tag upstream: `docker buildx imagetools inspect python:3.11.14-slim-bookworm`):
#   sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
# Pin the digest with --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: the aimctl wheel and its runtime dependencies, installed into a venv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .dockerignore admits only pyproject.toml, README.md and aimctl/ (no tests, no dev tools).
COPY . .
RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/aimctl \
 && /opt/aimctl/bin/pip install --no-index --find-links /wheels aimctl \
 && /opt/aimctl/bin/pip uninstall -y pip \
 && /opt/aimctl/bin/python -m compileall -q /opt/aimctl/lib

# --- runtime: the venv only -----------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="aimctl" \
      org.opencontainers.image.description="The AIM KV-cache operator (aimctl run)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/aimctl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIMCTL_LOG_FORMAT=json
COPY --from=build /opt/aimctl /opt/aimctl
# 65532 is the conventional "nonroot" UID/GID (distroless); numeric, so Kubernetes'
# runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
WORKDIR /tmp
# metrics, health probes (/healthz, /readyz)
EXPOSE 8080 8081
ENTRYPOINT ["aimctl", "run"]
