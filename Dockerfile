# syntax=docker/dockerfile:1
# The aimctl operator image: `aimctl run` as a non-root user on a read-only root filesystem, in a
# final image with a Python interpreter and nothing else (no shell, no package manager, no pip).
#
#   make docker-build                 # docker build -t aimctl:dev .
#
# Supply chain:
# - Both base images are pinned by digest in the ARG defaults below. Check a digest before
#   relying on it, and when moving to a newer one, with
#   `docker buildx imagetools inspect <image:tag>` (or `crane digest <image:tag>`); pass another
#   with --build-arg PYTHON_IMAGE=... / RUNTIME_IMAGE=....
# - Every Python package comes from the hash-pinned locks in requirements/ (pip --require-hashes);
#   aimctl's own wheel is built from this context with the locked setuptools, offline.
# - The two Pythons must agree on the minor version (3.11): distroless debian12 ships Debian's
#   python3.11, the build stage python.org's 3.11.x; wheels are cp311 manylinux (glibc 2.36).
# - SBOM: build with BuildKit's attestations, which scan the final image's dist-info directories
#   (every installed package keeps its *.dist-info, LICENSE files included):
#     docker buildx build --sbom=true --provenance=mode=max -t aimctl:dev .
#   or scan a built image: `syft aimctl:dev -o spdx-json > aimctl.spdx.json` (docs/decisions.md).
#
# python:3.11.14-slim-bookworm (multi-arch index)
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
# gcr.io/distroless/python3-debian12 (Debian 12, python3.11, /usr/bin/python3; no shell)
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12@sha256:2fdb05402a2cf21cf78fdb3ba4c5db167241e9e498140f5bf689d7efb773731f

# --- build: the locked runtime dependencies and the aimctl wheel, installed into one directory --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .dockerignore admits only the locks, pyproject.toml, README.md, LICENSE, aimctl/ and manifests/
# (aimctl/cli/manifests links to it; the wheel ships those files as package data).
COPY requirements/pip.txt requirements/build.txt requirements/runtime.txt requirements/
RUN python -m pip install --require-hashes -r requirements/pip.txt \
 && python -m pip install --require-hashes -r requirements/build.txt \
 && python -m pip install --require-hashes --target /opt/aimctl/site-packages \
        -r requirements/runtime.txt
COPY pyproject.toml README.md LICENSE ./
COPY aimctl/ aimctl/
COPY manifests/ manifests/
RUN python -m pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels . \
 && python -m pip install --no-deps --no-index --target /opt/aimctl/site-packages /wheels/aimctl-*.whl \
 && rm -rf /opt/aimctl/site-packages/bin \
 && python -m compileall -q /opt/aimctl/site-packages

# --- runtime: distroless Python and the installed packages; nothing else ----------------------
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="aimctl" \
      org.opencontainers.image.description="The AIM KV-cache operator (aimctl run)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONPATH=/opt/aimctl/site-packages \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIMCTL_LOG_FORMAT=json
COPY --from=build /opt/aimctl /opt/aimctl
# 65532 is distroless's "nonroot" UID/GID; numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /tmp
# metrics, health probes (/healthz, /readyz)
EXPOSE 8443 8081
# Exec form: there is no shell to run a string form.
ENTRYPOINT ["/usr/bin/python3", "-m", "aimctl", "run"]
