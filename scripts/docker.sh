#!/usr/bin/env bash
# Make the docker sandbox backend usable on this (Debian, root) machine: the engine, a running
# daemon and the sandbox image. Idempotent: each step is skipped when already done.
#
#   1. apt-get install docker.io debootstrap      (only if dockerd or debootstrap is missing)
#   2. dockerd --iptables=false --bridge=none ... (only if no daemon answers `docker info`)
#   3. build $SANDFORGE_SANDBOX_IMAGE             (only if missing, or with --rebuild)
#
# No registry is reachable here, so the image is not pulled or built FROM a base image: a
# minimal Debian rootfs made by debootstrap is imported with `docker import`. Production builds
# the equivalent image from deploy/sandbox-image/Dockerfile.
#
# The daemon never touches the host's firewall or forwarding (--iptables=false --bridge=none
# --ip-forward=false): sandboxes run with network_mode=none and need no network at all.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SANDFORGE_SANDBOX_IMAGE:-sandforge-sandbox:bookworm}
DATA_ROOT=${SANDFORGE_DOCKER_DATA_ROOT:-/var/lib/sandforge-docker}
LOG=${SANDFORGE_DOCKERD_LOG:-/var/log/sandforge-dockerd.log}
MIRROR=${SANDFORGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# Keep in step with deploy/sandbox-image/Dockerfile.
PACKAGES=python3,python3-numpy,python3-pandas,python3-sklearn
SANDBOX_USER=65534:65534 # nobody; run_sandboxed picks its own uid per run anyway

rebuild=0
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=1 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "docker.sh: unknown argument $arg (known: --rebuild)" >&2; exit 2 ;;
  esac
done

say() { echo "docker.sh: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "$(id -u)" != 0 ]; then
  say "must run as root (installs packages, starts dockerd)"; exit 1
fi

# 1. packages
t=$(now)
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  say "installing docker.io and debootstrap..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io debootstrap >/dev/null
fi
apt_s=$(since "$t")

# 2. daemon
t=$(now)
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (data root $DATA_ROOT, log $LOG)..."
  mkdir -p "$DATA_ROOT" "$(dirname "$LOG")"
  setsid nohup dockerd --data-root "$DATA_ROOT" --iptables=false --bridge=none \
    --ip-forward=false >>"$LOG" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd exited; last lines of $LOG:"; tail -n 20 "$LOG" >&2; exit 1
    fi
    sleep 0.25
  done
  if ! docker info >/dev/null 2>&1; then
    say "dockerd did not answer within 30 s; last lines of $LOG:"; tail -n 20 "$LOG" >&2; exit 1
  fi
fi
daemon_s=$(since "$t")

# 3. image
t=$(now)
debootstrap_s=0 import_s=0
if [ "$rebuild" = 1 ] || ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  old=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  rootfs=$(mktemp -d /var/tmp/sandforge-rootfs.XXXXXX)
  cleanup() {
    # debootstrap mounts /proc and /sys inside; never let rm walk into a mount.
    grep -o " $rootfs[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf --one-file-system "$rootfs"
  }
  trap cleanup EXIT
  # dpkg fsyncs every file: on a tmpfs debootstrap takes ~85 s instead of ~185 s. The rootfs
  # is ~1.2 GB, so only when memory is plentiful.
  if [ "$(awk '/MemAvailable/ { print int($2 / 1048576) }' /proc/meminfo)" -ge 6 ]; then
    mount -t tmpfs -o size=3g,mode=755 sandforge-rootfs "$rootfs"
  fi
  say "debootstrap $SUITE + $PACKAGES (log $rootfs.log)..."
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
    >"$rootfs.log" 2>&1; then
    say "debootstrap failed; last lines of $rootfs.log:"; tail -n 20 "$rootfs.log" >&2; exit 1
  fi
  rm -f "$rootfs.log"
  rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/*
  debootstrap_s=$(since "$t")
  t=$(now)
  say "importing $IMAGE..."
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "USER $SANDBOX_USER" \
    --change "WORKDIR /tmp" \
    --change "ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1" \
    --change 'CMD ["python3"]' \
    --message "sandforge sandbox: debootstrap $SUITE minbase + $PACKAGES" \
    - "$IMAGE" >/dev/null
  import_s=$(since "$t")
  cleanup
  trap - EXIT
  new=$(docker image inspect --format '{{.Id}}' "$IMAGE")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true # still used by a container: keep it
  fi
fi

# The sandbox refuses a daemon without seccomp (validators/sandbox/docker_backend.py).
if ! docker info --format '{{json .SecurityOptions}}' | grep -q 'name=seccomp'; then
  say "dockerd runs containers without seccomp; the docker sandbox backend refuses it"; exit 1
fi

# The image must run what the baselines need, as its non-root user, with no network, and load
# a seccomp filter with ctypes the way the sandbox's launcher stacks its own on docker's.
t=$(now)
docker run --rm --network none "$IMAGE" python3 -c \
  "import ctypes, os, numpy, pandas, sklearn; assert os.getuid() != 0" >/dev/null
check_s=$(since "$t")
say "ready: $IMAGE (apt ${apt_s} s, dockerd ${daemon_s} s, debootstrap ${debootstrap_s} s," \
  "import ${import_s} s, check ${check_s} s)"
