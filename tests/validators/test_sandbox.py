"""The sandbox's behaviour for well-behaved code, its limits, its backend choice and its
docker setup errors. The attacks it contains are in tests/security/test_sandbox_attacks.py.

Isolation tests run against every isolating backend (bubblewrap, docker), limit tests against
every backend. A backend that cannot run here is skipped with the reason, except docker when
SANDFORGE_REQUIRE_DOCKER=1 (scripts/test.sh sets it after scripts/docker.sh succeeded): then
an unusable docker backend fails the tests instead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_baselines as tb
from sandforge.validators.baselines import run_ladder
from sandforge.validators.sandbox import (
    ENV_VAR,
    OUTPUT_LIMIT_CHARS,
    PYTHON,
    SandboxConfigError,
    SandboxResult,
    backends,
    bwrap,
    run_sandboxed,
    sandbox_backend,
)

from sandforge.commands import generate

pytestmark = pytest.mark.slow

ISOLATING = ("bubblewrap", "docker")
REQUIRE_DOCKER = "SANDFORGE_REQUIRE_DOCKER"


def python(code: str) -> list[str]:
    return [PYTHON, "-c", code]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def use_backend(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force the backend; skip (or, for docker when required, fail) if it cannot run here."""
    monkeypatch.setenv(ENV_VAR, name)
    try:
        sandbox_backend()
    except SandboxConfigError as exc:
        if name == "docker" and os.environ.get(REQUIRE_DOCKER) == "1":
            pytest.fail(f"{REQUIRE_DOCKER}=1 but the docker backend is unusable: {exc}")
        pytest.skip(f"{name} is unusable on this host: {exc}")
    return name


@pytest.fixture
def docker(monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend("docker", monkeypatch)


@pytest.fixture(params=ISOLATING)
def isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend(request.param, monkeypatch)


@pytest.fixture(params=[*ISOLATING, "rlimit"])
def any_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend(request.param, monkeypatch)


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def run(code: str, workdir: Path, **limits: int) -> SandboxResult:
    return run_sandboxed(python(code), workdir=workdir, timeout_s=20, **limits)


def test_network_is_unreachable(isolated: str, workdir: Path, listening_port: int) -> None:
    code = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {listening_port}), timeout=2)
    print("connected")
except OSError as exc:
    print("blocked", exc)
"""
    result = run(code, workdir)
    assert result.backend == isolated
    assert result.stdout.startswith("blocked"), result


@pytest.mark.usefixtures("isolated")
def test_only_the_task_folder_is_writable(workdir: Path, tmp_path: Path) -> None:
    beside = tmp_path / "beside.txt"  # host /tmp: the sandbox sees a private tmpfs there
    host = Path("/var/tmp") / f"sandforge-probe-{uuid.uuid4().hex}"  # host disk: not mounted
    code = f"""
for path in ({str(beside)!r}, {str(host)!r}):
    try:
        open(path, "w").write("escaped")
        print("wrote", path)
    except OSError as exc:
        print("refused", path, exc.errno)
open("inside.txt", "w").write("ok")
"""
    result = run_sandboxed(python(code), workdir=workdir, timeout_s=20, outputs=["inside.txt"])
    assert result.returncode == 0, result.stderr
    assert "wrote" not in result.stdout
    assert not beside.exists()
    assert not host.exists()
    assert result.outputs == {"inside.txt": b"ok"}


def test_the_command_sees_a_copy_of_workdir(any_backend: str, workdir: Path) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "in.txt").write_text("input")
    code = """
import os
print(open("data/in.txt").read(), os.getcwd())
os.remove("data/in.txt")
open("new.txt", "w").write("made inside")
"""
    result = run_sandboxed(python(code), workdir=workdir, timeout_s=20, outputs=["new.txt"])
    assert result.returncode == 0, result.stderr
    text, cwd = result.stdout.split()
    assert text == "input"
    if any_backend != "rlimit":  # rlimit cannot remap paths: it runs in a sibling folder
        assert cwd == str(workdir.resolve())
    assert Path(cwd).parent == workdir.resolve().parent
    assert (workdir / "data" / "in.txt").read_text() == "input"  # the real one is untouched
    assert not (workdir / "new.txt").exists()
    assert result.outputs == {"new.txt": b"made inside"}
    assert [p.name for p in workdir.parent.iterdir()] == ["work"]  # the copy is gone


def test_relative_paths_beside_workdir_resolve(isolated: str, tmp_path: Path) -> None:
    """As evaluator.py reads ../private/answer.csv from public/."""
    public, private = tmp_path / "public", tmp_path / "private"
    public.mkdir()
    private.mkdir()
    (private / "answer.csv").write_text("id,y\n")
    result = run_sandboxed(
        python("print(open('../private/answer.csv').read(), end='')"),
        workdir=public,
        timeout_s=20,
        readonly_dirs=[private],
    )
    assert result.stdout == "id,y\n", result


def test_output_names_must_be_plain(workdir: Path) -> None:
    for name in ("../x", "sub/x", "", ".."):
        with pytest.raises(ValueError, match="plain file name"):
            run_sandboxed(python("pass"), workdir=workdir, timeout_s=5, outputs=[name])


@pytest.mark.usefixtures("isolated")
def test_parent_environment_is_invisible(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-a-real-key")
    result = run("import json, os; print(json.dumps(dict(os.environ)))", workdir)
    env = json.loads(result.stdout)
    assert "ANTHROPIC_API_KEY" not in env
    assert "sk-ant-not-a-real-key" not in result.stdout
    assert env["HOME"] == str(workdir.resolve())
    assert env["OMP_NUM_THREADS"] == "1"


@pytest.mark.usefixtures("isolated")
def test_fork_bomb_is_contained(workdir: Path) -> None:
    code = """
import os, time
started = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        started += 1
except OSError:
    pass
print(started)
"""
    result = run(code, workdir, max_procs=16)
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) < 16
    assert result.seconds < 10  # the sleeping children died with the sandbox


@pytest.mark.usefixtures("isolated")
def test_runs_unprivileged(workdir: Path) -> None:
    code = "import os; print(os.getuid()); print(open('/proc/self/status').read())"
    result = run(code, workdir)
    assert result.returncode == 0, result.stderr
    uid, status = result.stdout.split("\n", 1)
    assert int(uid) != 0
    assert "CapEff:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status


def test_python_is_the_backends_interpreter(any_backend: str, workdir: Path) -> None:
    expected = "/usr/bin/python3" if any_backend == "docker" else sys.executable
    for interpreter in (PYTHON, sys.executable):  # the host's path is an alias under docker
        code = "import sys; print(sys.executable)"
        result = run_sandboxed([interpreter, "-c", code], workdir=workdir, timeout_s=20)
        assert result.stdout.strip() == expected, result


def test_wall_clock_timeout_kills_the_process(any_backend: str, workdir: Path) -> None:
    result = run_sandboxed(python("import time; time.sleep(60)"), workdir=workdir, timeout_s=1)
    assert result.backend == any_backend
    assert result.timed_out
    assert result.returncode != 0
    assert result.seconds < 5


def test_memory_hog_fails(any_backend: str, workdir: Path) -> None:
    result = run("block = bytearray(1024 * 2**20); print('allocated')", workdir, memory_mb=256)
    assert result.returncode != 0
    assert "allocated" not in result.stdout
    assert "MemoryError" in result.stderr


def test_cpu_limit_stops_a_busy_loop(any_backend: str, workdir: Path) -> None:
    result = run("while True: pass", workdir, cpu_s=1)
    assert result.returncode != 0
    assert not result.timed_out
    assert result.seconds < 10


def test_output_is_truncated(any_backend: str, workdir: Path) -> None:
    result = run("import sys; sys.stderr.write('x' * 10**6 + 'END')", workdir)
    assert result.returncode == 0
    assert len(result.stderr) < OUTPUT_LIMIT_CHARS + 100
    assert result.stderr.endswith("END")


def test_rlimit_warns_once_on_stderr_and_in_the_log(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV_VAR, "rlimit")
    backends.warn_not_isolated.cache_clear()
    with caplog.at_level(logging.WARNING, logger=backends.__name__):
        for _ in range(2):
            assert run("print('hi')", workdir).stdout == "hi\n"
    warnings = [r for r in caplog.records if "NOT isolated" in r.getMessage()]
    assert len(warnings) == 1
    assert capfd.readouterr().err.count("NOT isolated") == 1


def test_unknown_backend_raises(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "podman")
    with pytest.raises(SandboxConfigError, match="podman"):
        run("print('hi')", workdir)


def test_forcing_unusable_bubblewrap_raises(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "bubblewrap")
    monkeypatch.setattr(bwrap, "problem", lambda: "bwrap is not installed")
    with pytest.raises(SandboxConfigError, match="not installed"):
        run("print('hi')", workdir)


@pytest.mark.parametrize("setting", ["", "auto"])
def test_no_isolating_backend_refuses_to_run(
    setting: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails closed: never an automatic fallback to resource limits only."""
    monkeypatch.setenv(ENV_VAR, setting)
    monkeypatch.setattr(bwrap, "problem", lambda: "bwrap is not installed")
    monkeypatch.setattr(backends, "_docker_problem", lambda: "the docker daemon is unreachable")
    with pytest.raises(SandboxConfigError) as error:
        run("open('ran', 'w')", workdir)
    message = str(error.value)
    assert "no isolating sandbox backend" in message
    assert "bwrap is not installed" in message and "daemon is unreachable" in message
    assert "apt-get install bubblewrap" in message and "scripts/docker.sh" in message
    assert "--sandbox rlimit" in message
    assert list(workdir.parent.iterdir()) == [workdir]  # no task folder was even made


def test_auto_takes_docker_when_bubblewrap_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(bwrap, "problem", lambda: "bwrap is not installed")
    monkeypatch.setattr(backends, "_docker_problem", lambda: "")
    assert sandbox_backend() == "docker"


def test_the_cli_offers_the_backends_the_sandbox_knows() -> None:
    assert generate.SANDBOX_CHOICES == backends.CHOICES


# docker only: what the container adds beyond the per-process limits, and its setup errors.


@pytest.mark.usefixtures("docker")
def test_docker_memory_limit_covers_the_whole_container(workdir: Path) -> None:
    # Each child stays under the per-process limit; together they exceed the container's.
    code = """
import os
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (150 * 2**20)
        import time; time.sleep(1)
        os._exit(0)
    children.append(pid)
print([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children])
"""
    result = run(code, workdir, memory_mb=256)
    assert "-9" in result.stdout or result.returncode != 0, result
    assert "256 MB memory limit" in result.stderr


@pytest.mark.usefixtures("docker")
def test_docker_removes_its_containers(workdir: Path) -> None:
    import docker as docker_sdk
    from sandforge.validators.sandbox.docker_backend import OWNER_LABEL, owner

    run("print('hi')", workdir)
    run_sandboxed(python("import time; time.sleep(60)"), workdir=workdir, timeout_s=0.5)
    client = docker_sdk.from_env()
    mine = {"label": f"{OWNER_LABEL}={owner()}"}  # other processes may share the daemon
    try:
        assert client.containers.list(all=True, filters=mine) == []
    finally:
        client.close()


def test_docker_unreachable_daemon_raises(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{workdir}/no-docker.sock")
    monkeypatch.setenv("SANDFORGE_SANDBOX_IMAGE", "sandforge-sandbox:probe")
    with pytest.raises(SandboxConfigError) as error:
        run("print('hi')", workdir)
    message = str(error.value)
    assert "daemon" in message and "unreachable" in message
    assert "sandforge-sandbox:probe" in message
    assert "scripts/docker.sh" in message


@pytest.mark.usefixtures("docker")
def test_docker_missing_image_raises(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"sandforge-sandbox:missing-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SANDFORGE_SANDBOX_IMAGE", missing)
    with pytest.raises(SandboxConfigError, match=f"{missing}.*missing.*scripts/docker.sh"):
        run("print('hi')", workdir)


@pytest.fixture(scope="module")
def docker_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tb.Outcome]:
    """test_baselines.py's `outcomes` (the ladder on every kind of task), under docker."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_backend("docker", monkeypatch)
        outcomes = {}
        for name, case in tb.CASES.items():
            folder = tmp_path_factory.mktemp(f"docker-{name}")
            answers = tb.build_task(folder, case)
            runs = run_ladder(folder)
            assert {run.backend for run in runs.values()} == {"docker"}
            submissions = {baseline: run.submission.read_bytes() for baseline, run in runs.items()}
            outputs = {f"submission_{baseline}.csv" for baseline in tb.BASELINE_SCRIPTS} | {
                "ladder.json"
            }
            leftovers = {p.name for p in folder.iterdir()} - tb.INPUTS - outputs
            outcomes[name] = tb.Outcome(case, answers, submissions, leftovers)
        return outcomes


@pytest.mark.parametrize("case_name", tb.CASES)
def test_baselines_under_docker(docker_outcomes: dict[str, tb.Outcome], case_name: str) -> None:
    """The image's python3, numpy, pandas and scikit-learn run the ladder as the host does."""
    for baseline in tb.BASELINE_SCRIPTS:
        tb.test_submission_is_valid(docker_outcomes, case_name, baseline)
    tb.test_models_beat_trivial_on_an_easy_signal(docker_outcomes, case_name)


@pytest.mark.usefixtures("docker")
def test_one_baseline_under_docker(docker_outcomes: dict[str, tb.Outcome], tmp_path: Path) -> None:
    """One baseline as its own container gives the bytes the ladder gave under docker."""
    tb.build_task(tmp_path, tb.CASES["class_probabilities"])
    run = run_ladder(tmp_path, ("strong",))["strong"]
    assert run.backend == "docker"
    assert (
        run.submission.read_bytes() == docker_outcomes["class_probabilities"].submissions["strong"]
    )
