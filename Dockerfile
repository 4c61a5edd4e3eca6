# syntax=docker/dockerfile:1
# Big Three: the agent service as a small, non-root container.
#
#   docker build -t bigthree .
#   docker build --build-arg PYTHON_IMAGE=python:3.12-slim -t bigthree .
#   docker build --build-arg BIGTHREE_EXTRAS=claude-code -t bigthree:claude-code .
#
# BIGTHREE_EXTRAS: optional extras to install, comma-separated. `claude-code` adds the Claude
# Agent SDK with its bundled Claude Code CLI (about 400 MB more) for `claude_code` agents.
#
# The image binds 0.0.0.0, which the service refuses without authentication: the runtime
# environment (e.g. the .env used by docker-compose.yml) must set BIGTHREE_API_KEYS.
# No secret is baked into the image; every key comes from the environment at run time.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: turn pyproject.toml + app/ into a wheel, install it into a venv -------------
FROM ${PYTHON_IMAGE} AS builder
ARG BIGTHREE_EXTRAS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app

# `python3 -m venv`, then the venv's own python and pip (first on PATH): works on the official
# python images (/usr/local/bin) and on a plain Debian base (/usr/bin/python3, no `python`)
RUN python3 -m venv /opt/venv \
    && python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m pip install "$(echo /wheels/*.whl)${BIGTHREE_EXTRAS:+[$BIGTHREE_EXTRAS]}"

# ---- runtime: the venv and the distribution's Chromium (for browser agents) ---------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="bigthree" \
      org.opencontainers.image.description="Self-hosted service that runs LLM agents" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIGTHREE_DATA_DIR=/data \
    BIGTHREE_HOST=0.0.0.0 \
    BIGTHREE_PORT=8000 \
    BIGTHREE_LOG_FORMAT=json

# Browser agents launch the system's Chromium through Playwright (Playwright's own browser
# download is not used); Playwright's bundled node needs libatomic1. A base that already has
# both (the offline container test prepares one) skips the install; the packaged versions
# are the ones the distribution supports.
# hadolint ignore=DL3008
RUN if ! command -v chromium >/dev/null 2>&1 \
        || ! python3 -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('atomic'))"; \
    then \
        apt-get update \
        && apt-get install -y --no-install-recommends chromium libatomic1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi

RUN groupadd --system --gid 10001 bigthree \
    && useradd --system --uid 10001 --gid bigthree --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin bigthree \
    && mkdir -p /data /artifacts \
    && chown bigthree:bigthree /data /artifacts

COPY --from=builder /opt/venv /opt/venv

# an empty, read-only working directory: no stray .env is ever picked up from here
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# python, not curl: the slim image has no curl. /health is unauthenticated liveness.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

# uvicorn drains on SIGTERM for BIGTHREE_DRAIN_GRACE_S (default 25 s): give the container a
# longer stop timeout than that (docker stop -t 30, compose stop_grace_period: 30s).
STOPSIGNAL SIGTERM
CMD ["bigthree", "serve"]
