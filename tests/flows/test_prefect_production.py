"""sandforge operated through a real Prefect server, as the README's production section says.

One server (`sandforge server up`, SQLite in a temporary PREFECT_HOME) for the module;
`sandforge server deploy` registers the deployment; two process workers
(`prefect worker start --pool sandforge --limit 1`) run what the API schedules. Runs are
created with the request the Prefect UI sends for "Custom run".

The machine may be loaded (CI runs beside other jobs): every wait and timeout is scaled by
tests/patience.py, and API calls go through Prefect's own HTTP client, which retries
transient errors (read timeouts, dropped connections, 429/502/503) with backoff as every
Prefect client does.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from patience import patience
from prefect.client.base import PrefectHttpxSyncClient

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SANDFORGE = [sys.executable, "-m", "sandforge.cli"]
PREFECT = [sys.executable, "-m", "prefect"]
SEED = "spaceship-titanic"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll `check` until truthy, for `timeout` seconds on an idle machine (more when loaded)."""
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process started in its own session, with everything it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=patience(20))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Server:
    url: str
    api: httpx.Client
    env: dict[str, str]  # for clients: PREFECT_API_URL, a PREFECT_HOME of their own, results
    logs: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*SANDFORGE, *args],
            capture_output=True,
            text=True,
            timeout=patience(600),
            cwd=REPO,
            env={**self.env, **(env or {})},
        )
        assert result.returncode == 0, f"sandforge {args}: {result.stderr[-3000:]}"
        return result

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API request; transient failures are retried by Prefect's client (`api`)."""
        return self.api.request(method, path, **kwargs)

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/flow_runs/{run_id}").raise_for_status().json()

    def wait_finished(self, run_ids: list[str], timeout: float = 300) -> list[dict[str, Any]]:
        def finished() -> list[dict[str, Any]] | None:
            runs = [self.flow_run(i) for i in run_ids]
            return runs if all(r["state"]["type"] in TERMINAL for r in runs) else None

        return wait_for(finished, timeout, f"flow runs {run_ids}", every=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {**QUIET, "PREFECT_HOME": str(home)}
    env["PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS"] = "1"  # schedules act at once
    env["PREFECT_API_LOG_RETRYABLE_ERRORS"] = "true"  # a 503's cause, in server.log
    env["PREFECT_SERVER_DATABASE_TIMEOUT"] = str(patience(10))  # SQLite waits on a busy CPU
    env["PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT"] = str(patience(5))
    logs = home / "server.log"
    with logs.open("w") as log:
        proc = subprocess.Popen(
            [*SANDFORGE, "server", "up", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    api = PrefectHttpxSyncClient(base_url=url, timeout=patience(30), raise_on_all_errors=False)

    def healthy() -> bool:
        assert proc.poll() is None, f"server exited: {logs.read_text()[-2000:]}"
        try:
            return api.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 120, "the Prefect server")
        client_home = tmp_path_factory.mktemp("prefect-client")
        client_env = {
            **env,
            "PREFECT_API_URL": url,
            "PREFECT_HOME": str(client_home),
            "PREFECT_LOCAL_STORAGE_PATH": str(client_home / "results"),
            "PREFECT_API_REQUEST_TIMEOUT": str(patience(60)),  # workers' and flows' clients
        }
        yield Server(url, api, client_env, client_home)
    finally:
        api.close()
        stop(proc)


@pytest.fixture(scope="module")
def deployment(server: Server) -> dict[str, Any]:
    result = server.run("server", "deploy")
    assert "generate_batch/generate-batch" in result.stderr
    response = server.call("GET", "/deployments/name/generate_batch/generate-batch")
    return response.raise_for_status().json()


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    log: Path

    def ran(self) -> set[str]:
        """Runs this worker executed: both workers may try a run; the server aborts the loser."""
        text = self.log.read_text()
        tried = set(re.findall(r"submitting flow run '([^']+)'", text))
        return tried - set(re.findall(r"Aborted submission of flow run '([^']+)'", text))


@pytest.fixture(scope="module")
def workers(server: Server, deployment: dict[str, Any]) -> Iterator[list[Worker]]:
    started = []
    env = {**server.env, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    try:
        for name in ("w1", "w2"):
            log = server.logs / f"{name}.log"
            argv = [*PREFECT, "worker", "start", "--pool", "sandforge", "--name", name]
            with log.open("w") as out:
                proc = subprocess.Popen(
                    [*argv, "--limit", "1"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append(Worker(name, proc, log))
        for worker in started:
            wait_for(lambda w=worker: "started" in w.log.read_text(), 60, f"worker {worker.name}")
        yield started
    finally:
        for worker in started:
            stop(worker.proc)


def ui_parameters(**chosen: Any) -> dict[str, Any]:
    """Every field of the deployment's form, as the UI sends them (JSON, nulls included)."""
    form = {
        "seeds": "all",
        "per_seed": 3,
        "provider": "offline",
        "model": None,
        "store": "store",
        "rng_seed": 0,
        "budget_usd": None,
        "max_attempts_per_seed": None,
        "strict": False,
        "difficulty": "medium",
    }
    return {**form, **chosen}


def ui_custom_run(server: Server, deployment: dict[str, Any], parameters: dict) -> httpx.Response:
    """POST /deployments/{id}/create_flow_run with the body the UI's Custom run sends."""
    body = {
        "state": {"type": "SCHEDULED", "message": "Run from the Prefect UI"},
        "parameters": parameters,
        "enforce_parameter_schema": deployment["enforce_parameter_schema"],
    }
    return server.call("POST", f"/deployments/{deployment['id']}/create_flow_run", json=body)


def bundles(store: Path) -> set[tuple[str, int, str]]:
    """(task id, version, content hash) of every bundle in a local store."""
    found = set()
    for manifest in store.glob("*/*/manifest.json"):
        data = json.loads(manifest.read_text())
        found.add((data["task_id"], data["version"], data["content_hash"]))
    return found


# --- the deployment ----------------------------------------------------------------------


def test_deployment_offers_the_batch_form_and_an_inactive_nightly_schedule(deployment):
    schema = deployment["parameter_openapi_schema"]["properties"]
    wanted = ["seeds", "per_seed", "provider", "model", "store", "rng_seed", "budget_usd"]
    assert set(wanted) <= set(schema)
    assert schema["per_seed"]["type"] == "integer" and "offline" in schema["provider"]["enum"]
    assert deployment["enforce_parameter_schema"] is True
    assert deployment["work_pool_name"] == "sandforge"
    assert deployment["entrypoint"] == "flows/generate_batch.py:generate_batch"
    pull = deployment["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
    assert Path(pull["directory"]) == REPO
    (nightly,) = deployment["schedules"]
    assert nightly["schedule"]["cron"] == "0 2 * * *" and nightly["active"] is False


def test_the_api_refuses_what_the_form_refuses(server, deployment):
    response = ui_custom_run(server, deployment, ui_parameters(per_seed=0))
    assert response.status_code in (409, 422), response.text
    assert "per_seed" in response.text


# --- runs through workers ----------------------------------------------------------------


def test_ui_triggered_run_publishes_bundles_and_the_batch_artifacts(
    server, deployment, workers, tmp_path
):
    store = tmp_path / "store"
    parameters = ui_parameters(seeds=SEED, per_seed=1, store=str(store), rng_seed=5)
    response = ui_custom_run(server, deployment, parameters)
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    (run,) = server.wait_finished([run_id])
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["parameters"] == parameters

    published = bundles(store)
    assert len(published) == 1
    body = {"flow_runs": {"id": {"any_": [run_id]}}}
    artifacts = server.call("POST", "/artifacts/filter", json=body).raise_for_status().json()
    by_key = {a["key"]: a for a in artifacts}
    assert {"batch-tasks", "batch-summary", "batch-report", "batch-progress"} <= set(by_key)
    (row,) = json.loads(by_key["batch-tasks"]["data"])
    assert row["task"].split("@")[0] == next(iter(published))[0]
    assert {"median", "bronze", "silver", "gold", "score_oracle"} <= set(row)
    assert by_key["batch-progress"]["data"] == 100
    report = next(store.glob("_reports/*.html"))
    assert report.as_uri() in by_key["batch-report"]["data"]
    assert report.as_uri() in by_key["batch-summary"]["data"]
    assert "<svg" in report.read_text()


def test_two_workers_share_a_batch_of_deployment_runs(server, deployment, workers, tmp_path):
    run_ids = []
    for i in range(4):
        parameters = ui_parameters(seeds=SEED, per_seed=1, store=str(tmp_path / f"s{i}"))
        response = ui_custom_run(server, deployment, {**parameters, "rng_seed": 5})
        assert response.status_code == 201, response.text
        run_ids.append(response.json()["id"])
    runs = server.wait_finished(run_ids)
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"] * 4
    ran = {w.name: w.ran() & set(run_ids) for w in workers}
    assert ran["w1"] and ran["w2"], ran  # both took part ...
    assert ran["w1"] | ran["w2"] == set(run_ids) and not ran["w1"] & ran["w2"]  # ... once each
    for i in range(4):
        assert len(bundles(tmp_path / f"s{i}")) == 1


# --- schedule ----------------------------------------------------------------------------


def test_nightly_schedule_creates_runs_once_switched_on(server, deployment):
    def scheduled() -> list[dict[str, Any]]:
        body = {
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        }
        runs = server.call("POST", "/flow_runs/filter", json=body).raise_for_status().json()
        return [r for r in runs if r["auto_scheduled"]]

    assert scheduled() == []  # off by default
    server.run(
        "server",
        "deploy",
        env={"SANDFORGE_NIGHTLY": "on", "SANDFORGE_NIGHTLY_CRON": "30 3 * * *"},
    )
    runs = wait_for(scheduled, 60, "runs from the nightly schedule")
    for run in runs:
        start = datetime.fromisoformat(run["expected_start_time"])
        assert (start.hour, start.minute) == (3, 30) and start > datetime.now(UTC)
    server.run("server", "deploy")  # back off: its future runs are withdrawn
    wait_for(lambda: scheduled() == [], 60, "the schedule's runs to be withdrawn")


# --- the global LLM limit ----------------------------------------------------------------


def test_llm_calls_never_exceed_the_global_limit(server, deployment, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from sandforge.agents.providers import get_provider
    from sandforge.flows import roles

    active, peak, lock = [0], [0], threading.Lock()

    class SlowWriter:
        def write(self, recipe: str) -> str:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.3)
            with lock:
                active[0] -= 1
            return recipe

    monkeypatch.setattr(roles, "LLM_LIMIT", "sandforge-llm-test")
    monkeypatch.setenv("SANDFORGE_LLM_CONCURRENCY", "2")
    with temporary_settings({PREFECT_API_URL: server.url}):
        roles.ensure_llm_limit()  # created from SANDFORGE_LLM_CONCURRENCY
        with get_client(sync_client=True) as client:
            assert client.read_global_concurrency_limit_by_name("sandforge-llm").limit == 4
            assert client.read_global_concurrency_limit_by_name("sandforge-llm-test").limit == 2
        llm = replace(get_provider(), name="anthropic", model="m", writer=SlowWriter())
        writer = roles.orchestrated(llm).writer
        threads = [  # each thread in a copy of this context: the API URL set above
            threading.Thread(target=contextvars.copy_context().run, args=(writer.write, str(i)))
            for i in range(5)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=patience(60))
    assert peak[0] == 2


# --- resuming ----------------------------------------------------------------------------


def test_killed_batch_resumes_without_regenerating_accepted_tasks(server, tmp_path):
    generate = ["generate", "--seeds", SEED, "--per-seed", "3", "--seed", "11", "--json"]
    results = {"PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "results")}
    store = tmp_path / "store"
    # One candidate at a time, killed as soon as the first bundle is published.
    proc = subprocess.Popen(
        [*SANDFORGE, *generate, "--store", str(store), "--concurrency", "1"],
        cwd=REPO,
        env={**server.env, **results},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: bundles(store), 300, "the first bundle", every=0.1)
    finally:
        stop(proc, signal.SIGKILL)
    before = bundles(store)
    assert 1 <= len(before) < 3, before

    resumed = json.loads(server.run(*generate, "--store", str(store), env=results).stdout)
    reused = {t["task_id"] for t in resumed["tasks"] if t["reused"]}
    assert {task_id for task_id, _, _ in before} <= reused  # not regenerated
    assert before <= bundles(store)  # still version 1, same content

    reference = tmp_path / "reference"
    fresh = {"PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "reference-results")}
    uninterrupted = json.loads(server.run(*generate, "--store", str(reference), env=fresh).stdout)
    assert uninterrupted["reused"] == 0
    assert bundles(store) == bundles(reference)
    assert len(bundles(store)) == 3
