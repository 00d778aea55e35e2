#!/usr/bin/env bash
# Install, lint and run the whole test suite: the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-90}
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The docker sandbox backend is tested for real where we can set it up (root on Debian: engine,
# daemon and image; ~3 min the first time, ~1 s after). Elsewhere, or with
# SANDFORGE_DOCKER_TESTS=0, its tests are skipped with the reason.
if [ "${SANDFORGE_DOCKER_TESTS:-1}" != 0 ] && [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
  bash scripts/docker.sh
  export SANDFORGE_REQUIRE_DOCKER=1 # now an unusable docker backend fails its tests
else
  echo "test.sh: no docker setup (SANDFORGE_DOCKER_TESTS=0 or not root on Debian):" \
    "docker sandbox tests skip" >&2
fi
# A real model in the loop (tests/agents/test_llm_server.py): the local SmolLM2 server. Its
# llama-cpp-python is built once (the wheel is cached in ~/.cache/sandforge/wheels), later
# installs take seconds. Opt-in with SANDFORGE_LLM_TESTS=1 until the build has been timed on
# an idle CI machine; otherwise those tests skip and say why.
if [ "${SANDFORGE_LLM_TESTS:-0}" = 1 ]; then
  bash scripts/llm_server.sh install
  export SANDFORGE_REQUIRE_LLM_SERVER=1 # now a broken server install fails its tests
else
  echo "test.sh: llm_server tests skip (SANDFORGE_LLM_TESTS=1 builds and runs them)" >&2
fi
.venv/bin/pytest "$@"
