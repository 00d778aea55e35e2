#!/usr/bin/env bash
# Install sandforge into .venv/ from the lock file, plus the system tools it runs with.
set -euo pipefail
cd "$(dirname "$0")/.."

# The sandbox for generated code: bubblewrap, and libseccomp2 for its seccomp filter (loaded
# through PyPI pyseccomp). Without them (or docker, scripts/docker.sh) `generate` refuses to
# run baselines unless told `--sandbox rlimit`.
if ! command -v bwrap >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q libseccomp.so.2; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap and libseccomp2 (sandbox for generated code)..." >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap libseccomp2 >/dev/null
  else
    echo "warning: bubblewrap or libseccomp2 is missing: generate will refuse to run" >&2
    echo "         baselines; install them with: sudo apt-get install bubblewrap libseccomp2" >&2
    echo "         (or start docker with scripts/docker.sh)" >&2
  fi
fi

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "sandforge installed: $(.venv/bin/sandforge --help >/dev/null && echo .venv/bin/sandforge)" >&2
