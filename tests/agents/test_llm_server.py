"""A real model in the loop: `sandforge generate` against llama-cpp-python's OpenAI-compatible
server running SmolLM2-135M-Instruct (scripts/llm_server.sh), as README's example does it.

Runs when the server is installed (the cached llama-cpp-python wheel makes that seconds);
scripts/test.sh installs it, building the wheel once when it is missing (~8 min on 2 cores).
Without it the tests skip and say why, unless SANDFORGE_REQUIRE_LLM_SERVER=1 (then they fail).
SANDFORGE_RECORD_LLM=DIR writes the server's real replies there (wire format) for fixtures.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from patience import patience

pytestmark = [pytest.mark.slow, pytest.mark.llm_server]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "llm_server.sh"
SANDFORGE = Path(sys.executable).parent / "sandforge"
ROLE_OF_STAGE = {"mutate": "strategist", "design": "designer", "describe": "writer"}
MECHANISMS = 4  # structured.MECHANISMS: at most this many probes, once per server


def _installed() -> bool:
    return subprocess.run(["bash", str(SCRIPT), "installed"], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[tuple[str, Path]]:
    """The server's base URL and its log (one access-log line per HTTP request)."""
    if not _installed():
        reason = (
            "no local LLM server installed: `scripts/llm_server.sh install` builds "
            "llama-cpp-python once (~8 min on 2 cores) and caches the wheel"
        )
        if os.environ.get("SANDFORGE_REQUIRE_LLM_SERVER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    port = _free_port()
    env = {**os.environ, "SANDFORGE_LLM_SERVER_WAIT": str(int(patience(120)))}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(port)], capture_output=True, text=True, env=env
    )
    try:
        assert started.returncode == 0, started.stderr
        cache = Path(os.environ.get("SANDFORGE_CACHE") or Path.home() / ".cache" / "sandforge")
        yield started.stdout.strip(), cache / f"llm-server-{port}.log"
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(port)], check=False)


def _completions(log: Path) -> list[int]:
    """Status of every chat completion request the server logged, in order."""
    pattern = r'"POST /v1/chat/completions HTTP/1.1" (\d{3})'
    return [int(s) for s in re.findall(pattern, log.read_text(errors="replace"))]


def test_a_batch_against_a_local_small_model_settles_every_candidate(
    llm_server: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, log = llm_server
    env = {
        **os.environ,
        "SANDFORGE_LLM_BASE_URL": base_url,
        "SANDFORGE_LLM_TIMEOUT": str(int(patience(600))),
    }
    before = len(_completions(log))
    args = [str(SANDFORGE), "generate", "--provider", "openai-compatible", "--model", "smollm2"]
    args += ["--seeds", "spaceship-titanic", "--per-seed", "1", "--max-attempts", "2"]
    args += ["--concurrency", "1", "--json", "--store", str(tmp_path / "store")]
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr  # 1: short of quota, a verdict not a crash
    summary = json.loads(done.stdout)
    assert summary["candidates"] == summary["accepted"] + summary["rejected"] >= 1
    for rejection in summary["rejections"]:
        role = ROLE_OF_STAGE.get(rejection["stage"])
        if role:  # an LLM stage: the reason names the role and what was wrong
            assert role in rejection["reason"] or rejection["stage"] == "review", rejection
        assert "Error" not in rejection["reason"].split(":")[0], rejection  # no crash
    llm = summary["llm"]
    statuses = _completions(log)[before:]
    # No retry storm: every request but the probes of refused mechanisms was an answered call.
    answered = statuses.count(200)
    assert answered == llm["total"]["calls"]
    assert len(statuses) - answered < MECHANISMS
    assert llm["total"]["cost_usd"] == 0
    assert llm["total"]["output_tokens"] > 0 and llm["total"]["seconds"] > 0
    for task in summary["tasks"]:
        manifest = json.loads((Path(task["path"]) / "manifest.json").read_text())
        assert set(manifest["llm"]["structured_output"].values()) <= {
            "json_schema",
            "tool_call",
            "json_object",
            "plain",
        }
