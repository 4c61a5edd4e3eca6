#!/usr/bin/env bash
# Container smoke test: build the project's Dockerfile and see the image's HEALTHCHECK turn
# healthy, then stop it with SIGTERM and expect exit code 0 within the stop grace.
#
#   sudo scripts/container_smoke.sh           # the whole run (root: it starts its own dockerd)
#   scripts/container_smoke.sh --check        # only list missing prerequisites (exit 3 if any)
#
# Needs no registry. Everything runs in a private Docker engine that this script starts and
# stops (own data root, exec root, pidfile and unix socket in a temp dir; --bridge=none,
# --iptables=false), so it never touches another Docker on the machine:
#   1. base     a minimal Debian bookworm with python3 + venv (debootstrap from the mirror in
#               the host's apt sources) and chromium (apt in a chroot of it: the Dockerfile
#               installs chromium only where the base lacks it, which an offline build
#               cannot), `docker import`ed; the rootfs tarball is cached per day under
#               $BIGTHREE_SMOKE_CACHE (default ~/.cache/bigthree-smoke; empty: off)
#   2. wheels   the project's dependencies, the claude-code extra's included (+ setuptools,
#               wheel for the build backend) as wheels built on the host with the host's pip
#               configuration; a thin layer on
#               the base adds them with a pip.conf (no-index, find-links), so the build is
#               offline: `docker build --network none`
#   3. build    the project's Dockerfile with BuildKit and --build-arg PYTHON_IMAGE=<base>,
#               minus its `# syntax=` line (that line makes BuildKit pull a frontend image)
#   4. run      with --network none (the health check is in-container loopback) and
#               BIGTHREE_API_KEYS; the image's defaults (0.0.0.0:8000, /data) are kept.
#               Without keys it must refuse to start (exit 2). Poll the health status until
#               healthy (deadline), then /ready with the key from inside the container, and
#               a headless Chromium launched by Playwright as the service user (screenshot).
#   5. stop     `docker stop -t 30`: exit code 0 before the grace runs out (drains on SIGTERM)
#   6. extra    the same Dockerfile with --build-arg BIGTHREE_EXTRAS=claude-code: builds, and
#               `bigthree check-config` in it finds the Claude Code CLI usable (it is not in the
#               default image)
# On exit (success, failure or SIGTERM/SIGINT) it removes the container, stops its dockerd and
# deletes its temp dir. Stage timings are printed as `smoke: <stage> <seconds>s`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE=bookworm
SUITE_PYTHON=3.11 # bookworm's python3; host-built wheels must match it
PYTHON=${BIGTHREE_SMOKE_PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3 || echo python3)
DOCKER=${BIGTHREE_SMOKE_DOCKER:-/usr/bin/docker} # the docker.io CLI: builtin BuildKit, no buildx
[ -x "$DOCKER" ] || DOCKER=$(command -v docker || echo docker)
CACHE_DIR=${BIGTHREE_SMOKE_CACHE-${XDG_CACHE_HOME:-$HOME/.cache}/bigthree-smoke}
HEALTH_TIMEOUT=${BIGTHREE_SMOKE_HEALTH_TIMEOUT:-120}
STOP_GRACE=30 # docker-compose.yml's stop_grace_period
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf 'smoke: %s\n' "$*"; }
die() {
  printf 'smoke: FAILED: %s\n' "$*" >&2
  exit 1
}

# The Debian mirror the host's apt is configured with (deb822 .sources or one-line lists).
apt_mirror() {
  "$PYTHON" - "$SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for block in re.split(r"\n\s*\n", open(path, encoding="utf-8").read()):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", block, flags=re.MULTILINE))
        if ("deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split()
                and "main" in fields.get("Components", "").split()
                and fields.get("Enabled", "yes") != "no"):
            print(fields["URIs"].split()[0]); sys.exit(0)
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
        if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
            print(words[1]); sys.exit(0)
sys.exit(1)
EOF
}

missing_prerequisites() {
  local missing=()
  [ "$(id -u)" -eq 0 ] || missing+=("root (it starts its own dockerd)")
  for tool in dockerd containerd runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  "$DOCKER" --version >/dev/null 2>&1 || missing+=("docker CLI")
  [ -r "$KEYRING" ] || missing+=("$KEYRING")
  "$PYTHON" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$SUITE_PYTHON')" \
    2>/dev/null || missing+=("python $SUITE_PYTHON for the wheelhouse (BIGTHREE_SMOKE_PYTHON)")
  "$PYTHON" -m pip --version >/dev/null 2>&1 || missing+=("pip for $PYTHON")
  [ -n "${BIGTHREE_DEBIAN_MIRROR:-}" ] || apt_mirror >/dev/null 2>&1 ||
    missing+=("a $SUITE mirror in the apt sources (or BIGTHREE_DEBIAN_MIRROR)")
  if [ ${#missing[@]} -gt 0 ]; then
    printf '%s\n' "${missing[@]}"
    return 1
  fi
}

if [ "${1:-}" = "--check" ]; then
  if missing_prerequisites; then exit 0; else exit 3; fi
fi
if ! absent=$(missing_prerequisites); then
  printf 'smoke: missing prerequisites (apt-get install -y docker.io debootstrap):\n%s\n' \
    "$absent" >&2
  exit 3
fi

# ---- private engine, cleaned up on every exit ----------------------------------------------
WORK=$(mktemp -d /tmp/bigthree-smoke.XXXXXX) # short: unix socket paths are limited to 108 chars
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/docker/data" "$WORK/docker/exec" "$WORK/cli"
SOCK=$WORK/docker/docker.sock
PIDFILE=$WORK/docker/dockerd.pid
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$WORK/cli DOCKER_BUILDKIT=1
CONTAINER=bigthree-smoke
IMAGE=bigthree-smoke/app:local
DOCKERD_PID=
# dockerd 20.10 writes /etc/docker/key.json and /run/docker/plugins: remove them if we made them
created_key=0
[ -e /etc/docker/key.json ] || created_key=1
created_etc_docker=0
[ -e /etc/docker ] || created_etc_docker=1
created_run_docker=0
[ -e /run/docker ] || created_run_docker=1

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$DOCKERD_PID" ]; then
    local pid=$DOCKERD_PID
    "$DOCKER" rm -f -v "$CONTAINER" "$CONTAINER-nokeys" >/dev/null 2>&1
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 300); do # dockerd stops its containerd and containers first
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
  fi
  # mounts left under the temp dir (debootstrap's /proc or dockerd's, if they were killed)
  grep -F " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$WORK" # never into a mount that survived the umount
  [ "$created_key" = 1 ] && rm -f /etc/docker/key.json
  [ "$created_etc_docker" = 1 ] && rmdir /etc/docker 2>/dev/null
  [ "$created_run_docker" = 1 ] && rm -rf /run/docker
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

now() { date +%s.%N; }
STAGE_START=0
STAGE_NAME=
TIMINGS=()
stage() {
  STAGE_NAME=$1
  STAGE_START=$(now)
}
stage_done() {
  local secs
  secs=$(awk -v a="$STAGE_START" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  TIMINGS+=("$STAGE_NAME=${secs}s")
  log "$STAGE_NAME ${secs}s"
}
# run a step with its output to a log; on failure show the log's tail
logged() {
  local name=$1
  shift
  if ! "$@" >"$LOGS/$name.log" 2>&1; then
    tail -n 60 "$LOGS/$name.log" >&2
    die "$name: $*"
  fi
}
TOTAL_START=$(now)

stage dockerd
echo '{}' >"$WORK/docker/daemon.json" # never read the machine's /etc/docker/daemon.json
dockerd --iptables=false --ip6tables=false --bridge=none --ip-forward=false --ip-masq=false \
  --config-file "$WORK/docker/daemon.json" \
  --data-root "$WORK/docker/data" --exec-root "$WORK/docker/exec" --pidfile "$PIDFILE" \
  --host "unix://$SOCK" >"$LOGS/dockerd.log" 2>&1 </dev/null &
DOCKERD_PID=$!
deadline=$((SECONDS + 60))
until "$DOCKER" version >/dev/null 2>&1; do
  if ! kill -0 "$DOCKERD_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    tail -n 40 "$LOGS/dockerd.log" >&2
    die "dockerd did not come up"
  fi
  sleep 0.2
done
stage_done

# ---- 1. base image: Debian bookworm + python3 + venv + chromium ----------------------------
stage base
tarball=
if [ -n "$CACHE_DIR" ]; then
  mkdir -p "$CACHE_DIR"
  tarball=$CACHE_DIR/debian-$SUITE-python3-chromium-libatomic1-$(date -u +%Y%m%d).tar
fi
if [ -z "$tarball" ] || [ ! -s "$tarball" ]; then
  mirror=${BIGTHREE_DEBIAN_MIRROR:-$(apt_mirror)}
  rootfs=$WORK/rootfs
  logged debootstrap debootstrap --variant=minbase --include=python3,python3-venv \
    --keyring="$KEYRING" "$SUITE" "$rootfs" "$mirror"
  # chromium (and libatomic1, for Playwright's node) by apt inside the new root: debootstrap
  # cannot configure chromium's dependency tree
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" # start no daemon
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  mount -t proc proc "$rootfs/proc"
  logged chromium chroot "$rootfs" sh -c 'apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium libatomic1'
  umount "$rootfs/proc"
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/resolv.conf"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  out=${tarball:-$WORK/rootfs.tar}
  tar --numeric-owner -C "$rootfs" -cf "$out.part" .
  mv "$out.part" "$out"
  rm -rf "$rootfs"
  if [ -n "$tarball" ]; then # keep only today's
    find "$CACHE_DIR" -maxdepth 1 -name "debian-$SUITE-python3-*.tar" ! -path "$tarball" -delete
  fi
  tarball=$out
  log "base: debootstrapped $SUITE from the apt mirror"
else
  log "base: cached $tarball"
fi
logged import "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
  "$tarball" bigthree-smoke/base:local
stage_done

# ---- 2. wheelhouse layer: the dependencies as wheels, pip set to use only them -------------
stage wheels
src=$WORK/src
mkdir -p "$src"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$src/"
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - app | tar -C "$src" -xf -
pybase=$WORK/pybase
mkdir -p "$pybase/wheelhouse"
# The host's 3.11 may be newer than bookworm's 3.11.2, and pip resolves markers for the host:
# dependencies a marker keeps for older patch releases are added by name (redis needs
# async-timeout below 3.11.3).
logged pip-wheel "$PYTHON" -m pip wheel --wheel-dir "$pybase/wheelhouse" "${src}[claude-code]" \
  'setuptools>=68' wheel 'async-timeout>=4.0.3'
# the image must build the project from its own source, not from this wheel
"$PYTHON" - "$src/pyproject.toml" "$pybase/wheelhouse" <<'EOF'
import pathlib, re, sys, tomllib
name = tomllib.loads(pathlib.Path(sys.argv[1]).read_text())["project"]["name"]
for wheel in pathlib.Path(sys.argv[2]).glob(re.sub(r"[-_.]+", "_", name).lower() + "-*.whl"):
    wheel.unlink()
EOF
printf '[global]\nno-index = true\nfind-links = /opt/wheelhouse\n' >"$pybase/pip.conf"
printf 'FROM bigthree-smoke/base:local\nCOPY wheelhouse /opt/wheelhouse\nCOPY pip.conf /etc/pip.conf\n' \
  >"$pybase/Dockerfile"
logged pybase "$DOCKER" build --network none -t bigthree-smoke/pybase:local "$pybase"
stage_done

# ---- 3. the project's Dockerfile ------------------------------------------------------------
stage build
sed '1{/^# *syntax=/d}' "$ROOT/Dockerfile" >"$WORK/Dockerfile"
# -f outside the context: BuildKit still applies the context's .dockerignore
logged build "$DOCKER" build --network none --progress=plain -f "$WORK/Dockerfile" \
  --build-arg PYTHON_IMAGE=bigthree-smoke/pybase:local -t "$IMAGE" "$ROOT"
[ -n "$("$DOCKER" image inspect -f '{{.Config.Healthcheck}}' "$IMAGE")" ] ||
  die "the image has no HEALTHCHECK"
stage_done

# ---- 4. run: refuses without keys, healthy with them ----------------------------------------
stage refuse
set +e
timeout 60 "$DOCKER" run --name "$CONTAINER-nokeys" --network none "$IMAGE" \
  >"$LOGS/nokeys.log" 2>&1
code=$?
set -e
[ "$code" -eq 2 ] || {
  tail -n 20 "$LOGS/nokeys.log" >&2
  die "without BIGTHREE_API_KEYS on 0.0.0.0 the container exited $code, expected 2"
}
"$DOCKER" rm -v "$CONTAINER-nokeys" >/dev/null
stage_done

stage healthy
KEY=smoke-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$DOCKER" run -d --name "$CONTAINER" --network none -e "BIGTHREE_API_KEYS=$KEY" "$IMAGE" \
  >/dev/null
deadline=$((SECONDS + HEALTH_TIMEOUT))
while :; do
  state=$("$DOCKER" inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' \
    "$CONTAINER")
  case "$state" in
    "running healthy") break ;;
    "running starting") ;;
    *)
      "$DOCKER" logs "$CONTAINER" 2>&1 | tail -n 40 >&2
      die "container is '$state', expected running and healthy"
      ;;
  esac
  if [ $SECONDS -ge $deadline ]; then
    "$DOCKER" inspect -f '{{json .State.Health}}' "$CONTAINER" >&2
    "$DOCKER" logs "$CONTAINER" 2>&1 | tail -n 40 >&2
    die "not healthy after ${HEALTH_TIMEOUT}s"
  fi
  sleep 0.5
done
stage_done
uid=$("$DOCKER" exec "$CONTAINER" id -u)
[ "$uid" = 10001 ] || die "the service runs as uid $uid, expected 10001"
ready=$("$DOCKER" exec -e "KEY=$KEY" "$CONTAINER" python -c '
import os, urllib.request
request = urllib.request.Request("http://127.0.0.1:8000/ready",
                                 headers={"Authorization": "Bearer " + os.environ["KEY"]})
print(urllib.request.urlopen(request, timeout=5).read().decode())')
case "$ready" in *'"status":"ready"'*) ;; *) die "/ready answered: $ready" ;; esac
# browser agents: the image's Chromium starts headless under Playwright as the service user
shot=$("$DOCKER" exec "$CONTAINER" python -c '
import asyncio
from playwright.async_api import async_playwright
async def main():
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium")
        page = await browser.new_page(viewport={"width": 320, "height": 240})
        await page.set_content("<h1>smoke</h1>")
        print(len(await page.screenshot(type="png")))
        await browser.close()
asyncio.run(main())' 2>&1) || die "Chromium did not start in the image: $shot"
log "chromium: a ${shot}-byte screenshot"

# ---- 5. stop: drains on SIGTERM, exits 0 within the grace ----------------------------------
stage stop
"$DOCKER" stop -t "$STOP_GRACE" "$CONTAINER" >/dev/null
stage_done
code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$CONTAINER")
[ "$code" -eq 0 ] || {
  "$DOCKER" logs "$CONTAINER" 2>&1 | tail -n 20 >&2
  die "exit code $code after docker stop, expected 0"
}

# ---- 6. the claude-code extra: the image builds with it, and its Claude Code CLI runs -------
stage extra
cc_image=$IMAGE-claude-code
logged build-extra "$DOCKER" build --network none --progress=plain -f "$WORK/Dockerfile" \
  --build-arg PYTHON_IMAGE=bigthree-smoke/pybase:local --build-arg BIGTHREE_EXTRAS=claude-code \
  -t "$cc_image" "$ROOT"
claude_code_check() { # check-config's claude_code line (its exit code reflects other findings)
  "$DOCKER" run --rm --network none -e "BIGTHREE_API_KEYS=$KEY" "$1" bigthree check-config \
    2>&1 | grep ' claude_code' || true
}
with_extra=$(claude_code_check "$cc_image")
case "$with_extra" in
  "OK claude_code: Claude Code CLI usable"*) ;;
  *) die "with the claude-code extra, check-config said: ${with_extra:-nothing about claude_code}" ;;
esac
without=$(claude_code_check "$IMAGE")
case "$without" in
  "WARN claude_code agents unavailable"*) ;;
  *) die "without the extra, check-config said: ${without:-nothing about claude_code}" ;;
esac
stage_done

STAGE_START=$TOTAL_START
STAGE_NAME=total
stage_done
log "OK ${TIMINGS[*]}"
