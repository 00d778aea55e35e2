"""deploy/: no registry or cluster is reachable here, so the compose file, Dockerfile and work
pool examples are checked for what makes them work: they parse, and the names, images,
addresses, credentials and paths they share agree with each other and with the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel, RawScheduleConfig
from prefect.client.schemas.schedules import CronSchedule
from sandforge.flows.deployments import ENTRYPOINT, DeploySettings
from sandforge.flows.generate_batch import generate_batch
from sandforge.flows.roles import LLM_LIMIT

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SANDFORGE_SERVICES = ("prefect-server", "create-bucket", "deploy", "worker")
# Job variables of the default base job templates: prefect-docker 0.7.4, prefect-kubernetes 0.8.0
POOL_VARIABLES = {
    "docker": {
        "image", "image_pull_policy", "networks", "network_mode", "auto_remove", "volumes",
        "stream_output", "mem_limit", "memswap_limit", "privileged", "container_create_kwargs",
        "env", "labels", "name", "command", "registry_credentials",
    },
    "kubernetes": {
        "image", "image_pull_policy", "namespace", "service_account_name", "backoff_limit",
        "finished_job_ttl", "job_watch_timeout_seconds", "pod_watch_timeout_seconds",
        "stream_output", "cluster_config", "cpu_request", "cpu_limit", "memory_request",
        "memory_limit", "env", "labels", "name", "command",
    },
}  # fmt: skip


def env_of(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def default(value: str) -> str:
    """`${VAR:-default}` -> default, as compose substitutes it with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_compose_runs_server_postgres_minio_worker_and_the_sandforge_image():
    assert {"postgres", "prefect-server", "minio", "worker", "deploy"} <= set(SERVICES)
    for name in SANDFORGE_SERVICES:
        service = SERVICES[name]
        assert service["image"] == "sandforge:latest"
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / ".." / SERVICES["worker"]["build"]["dockerfile"]).is_file()
    for service in SERVICES.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES


def test_the_server_stores_its_state_in_the_compose_postgres():
    url = default(env_of("prefect-server")["PREFECT_API_DATABASE_CONNECTION_URL"])
    pg = {k: default(v) for k, v in env_of("postgres").items()}
    expected = (
        f"postgresql+asyncpg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/"
    )
    assert url == expected + pg["POSTGRES_DB"]
    assert SERVICES["prefect-server"]["command"][:3] == ["sandforge", "server", "up"]
    assert "4200:4200" in SERVICES["prefect-server"]["ports"]


def test_workers_and_deploy_reach_the_server_minio_and_one_pool():
    minio = {k: default(v) for k, v in env_of("minio").items()}
    for name in ("create-bucket", "deploy", "worker"):
        env = {k: default(v) for k, v in env_of(name).items()}
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env["SANDFORGE_S3_ENDPOINT"] == "http://minio:9000"
        assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        assert env["SANDFORGE_POOL"] == DeploySettings().pool
    worker = SERVICES["worker"]
    assert worker["command"][:5] == ["prefect", "worker", "start", "--pool", DeploySettings().pool]
    assert SERVICES["deploy"]["command"] == ["sandforge", "server", "deploy"]


def test_bundles_go_to_the_bucket_compose_creates_and_results_are_shared():
    bucket = env_of("worker")["SANDFORGE_STORE"].removeprefix("s3://").split("/")[0]
    assert f"create_bucket('{bucket}')" in SERVICES["create-bucket"]["command"][-1]
    results = env_of("worker")["PREFECT_LOCAL_STORAGE_PATH"]
    assert f"results:{results}" in SERVICES["worker"]["volumes"]
    assert "results" in COMPOSE["volumes"]


def test_dockerfile_installs_the_lock_and_the_code_the_deployment_points_at():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "pip install --no-cache-dir -r requirements.lock" in text
    assert "WORKDIR /app" in text and "COPY . ." in text
    assert "PREFECT_LOCAL_STORAGE_PATH=/results" in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignored and "store" in ignored


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_work_pool_examples_deploy_the_flow_with_valid_settings(kind: str):
    raw = yaml.safe_load((DEPLOY / kind / "prefect.yaml").read_text())
    config = PrefectYamlModel.model_validate(raw)
    assert config.pull == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}
    ]  # the Dockerfile's WORKDIR
    (deployment,) = config.deployments
    assert deployment.entrypoint == ENTRYPOINT
    path, function = ENTRYPOINT.split(":")
    assert (REPO / path).is_file() and function == generate_batch.fn.__name__
    generate_batch.validate_parameters(deployment.parameters)
    for schedule in raw["deployments"][0]["schedules"]:
        RawScheduleConfig.model_validate(schedule)
        CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert schedule["active"] is False  # nightly batches are off by default
    pool = deployment.work_pool
    assert pool is not None and pool.name
    assert set(pool.job_variables) <= POOL_VARIABLES[kind]
    assert "SANDFORGE_S3_ENDPOINT" in pool.job_variables["env"]


def test_docker_pool_example_joins_the_compose_network_and_result_volume():
    config = yaml.safe_load((DEPLOY / "docker" / "prefect.yaml").read_text())
    variables = config["deployments"][0]["work_pool"]["job_variables"]
    project = COMPOSE["name"]
    assert variables["networks"] == [f"{project}_default"]
    assert variables["volumes"] == [f"{project}_results:/results"]
    assert variables["image"] == SERVICES["worker"]["image"]


def test_kubernetes_workers_serve_the_example_pool_with_the_rbac_they_need():
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "worker.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Deployment"} <= set(kinds)
    pool = yaml.safe_load((DEPLOY / "kubernetes" / "prefect.yaml").read_text())
    variables = pool["deployments"][0]["work_pool"]
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[command.index("--pool") + 1] == variables["name"]
    assert command[command.index("--type") + 1] == "kubernetes"
    namespace = kinds["Namespace"]["metadata"]["name"]
    assert variables["job_variables"]["namespace"] == namespace
    jobs = next(r for r in kinds["Role"]["rules"] if "batch" in r["apiGroups"])
    assert {"create", "delete", "watch"} <= set(jobs["verbs"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["EXTRA_PIP_PACKAGES"].startswith("prefect-kubernetes==")


def test_the_llm_limit_name_is_the_one_documented():
    assert LLM_LIMIT == "sandforge-llm"
    assert LLM_LIMIT in (REPO / "README.md").read_text()
