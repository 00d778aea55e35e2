"""The `generate_batch` deployment on a process work pool, configured from the environment.

    SANDFORGE_POOL             process work pool the deployment runs on (sandforge)
    SANDFORGE_NIGHTLY          on/true/1 activates the nightly schedule (off by default)
    SANDFORGE_NIGHTLY_CRON     its cron expression ("0 2 * * *")
    SANDFORGE_NIGHTLY_TZ       its time zone (UTC)
    SANDFORGE_STORE            default `store` parameter of the deployment (flow default: store)
    SANDFORGE_LLM_CONCURRENCY  slots of the global `sandforge-llm` limit (4)
    SANDFORGE_TASK_SLOTS       candidates one flow run builds at once (2), passed to workers

`deploy()` is idempotent: it creates the pool and the limit when missing and updates the
deployment in place. Workers load the flow from `source` (this checkout by default), so every
worker needs the code at that path; docker and kubernetes pools ship it in an image instead
(deploy/docker, deploy/kubernetes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.schedules import Cron
from prefect.workers.process import ProcessWorker
from sandforge.flows.generate_batch import generate_batch, task_slots
from sandforge.flows.roles import LLM_LIMIT, llm_slots

DEPLOYMENT = "generate-batch"
ENTRYPOINT = "flows/generate_batch.py:generate_batch"
REPO = Path(__file__).resolve().parents[1]
TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class DeploySettings:
    pool: str = "sandforge"
    nightly: bool = False
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    store: str | None = None
    source: Path = REPO

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DeploySettings:
        return cls(
            pool=env.get("SANDFORGE_POOL", cls.pool),
            nightly=env.get("SANDFORGE_NIGHTLY", "").strip().lower() in TRUE,
            cron=env.get("SANDFORGE_NIGHTLY_CRON", cls.cron),
            timezone=env.get("SANDFORGE_NIGHTLY_TZ", cls.timezone),
            store=env.get("SANDFORGE_STORE") or None,
        )


def ensure_pool(name: str) -> None:
    """A process work pool: workers run each flow run as a subprocess of their own."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            try:
                template = ProcessWorker.get_default_base_job_template()
                pool = WorkPoolCreate(name=name, type="process", base_job_template=template)
                client.create_work_pool(pool)
            except ObjectAlreadyExists:
                pass


def deploy(settings: DeploySettings) -> UUID:
    """Pool, global LLM limit (set to SANDFORGE_LLM_CONCURRENCY) and the deployment."""
    ensure_pool(settings.pool)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(LLM_LIMIT, llm_slots())
    nightly = Cron(
        settings.cron, timezone=settings.timezone, active=settings.nightly, slug="nightly"
    )
    source = generate_batch.from_source(source=str(settings.source), entrypoint=ENTRYPOINT)
    return source.deploy(
        name=DEPLOYMENT,
        work_pool_name=settings.pool,
        schedules=[nightly],
        parameters={"store": settings.store} if settings.store else {},
        job_variables={"env": {"SANDFORGE_TASK_SLOTS": str(task_slots())}},
        description="Generate, verify and publish a batch of tasks from seed cards.",
        tags=["sandforge"],
        print_next_steps=False,
        ignore_warnings=True,  # a process pool is what we mean
    )
