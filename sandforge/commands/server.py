"""`sandforge server up|deploy`: a Prefect server to operate sandforge from, and its deployment.

Everything else is plain Prefect: `prefect worker start --pool sandforge` runs batches, the
UI (http://HOST:PORT) triggers and schedules them. Settings come from the environment:
Prefect's own (PREFECT_HOME, PREFECT_API_URL, PREFECT_API_DATABASE_CONNECTION_URL,
PREFECT_SERVER_API_HOST/PORT, ...) and SANDFORGE_* (see flows/deployments.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from sandforge.commands import arguments
from sandforge.commands.output import EXIT_BAD_INPUT, EXIT_OK, console, fail, prefect_defaults


def cmd_up(args: argparse.Namespace) -> int:
    """Replace this process with `prefect server start`: signals reach the server directly."""
    prefect_defaults()
    argv = [sys.executable, "-m", "prefect", "server", "start"]
    if args.host:
        argv += ["--host", args.host]
    if args.port:
        argv += ["--port", str(args.port)]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return EXIT_OK  # not reached


def cmd_deploy(args: argparse.Namespace) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL is not set: point it at a server, e.g. http://127.0.0.1:4200/api")
        return EXIT_BAD_INPUT
    prefect_defaults()
    from sandforge.flows.deployments import DEPLOYMENT, DeploySettings, deploy

    settings = DeploySettings.from_env()
    deployment_id = deploy(settings)
    state = "active" if settings.nightly else "off"
    console.print(
        f"deployed generate_batch/{DEPLOYMENT} ({deployment_id}) on pool {settings.pool!r}; "
        f"nightly schedule {settings.cron!r} {settings.timezone} is {state}",
        highlight=False,
    )
    console.print(f"start a worker: prefect worker start --pool {settings.pool}", highlight=False)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    server = commands.add_parser("server", help="run a Prefect server and deploy to it")
    server_commands = server.add_subparsers(dest="server_command", required=True)
    up = server_commands.add_parser(
        "up", help="start a local Prefect server (UI and API) in the foreground"
    )
    up.add_argument(
        "--host",
        type=arguments.host,
        help="bind address (default: PREFECT_SERVER_API_HOST, 127.0.0.1)",
    )
    up.add_argument(
        "--port", type=arguments.port, help="port (default: PREFECT_SERVER_API_PORT, 4200)"
    )
    up.set_defaults(handler=cmd_up)
    deploy = server_commands.add_parser(
        "deploy",
        help="create the work pool and LLM limit, register the generate_batch deployment",
        description="Idempotent. Configured by SANDFORGE_POOL, SANDFORGE_NIGHTLY(_CRON/_TZ), "
        "SANDFORGE_STORE, SANDFORGE_LLM_CONCURRENCY, SANDFORGE_TASK_SLOTS and PREFECT_API_URL.",
    )
    deploy.set_defaults(handler=cmd_deploy)
