"""What an accepted task costs in LLM calls, tokens and money, from recorded runs.

    .venv/bin/python -m bench.llm_cost [--json] [CASSETTE ...]
    .venv/bin/python -m bench.llm_cost --record URL --model M [--seed-card S] [--candidates N]

Replays recorded LLM runs (tests/fixtures/llm/<name>.json, default: every cassette that
lists its `candidates`) through the real SDK clients and every stage of the pipeline, the
sandboxed ladder included, so "accepted" means what it means in a batch. Rejected candidates'
calls count towards the accepted tasks' cost, as in a real batch. Prints, per provider and
role, LLM calls, input (uncached, cache write, cache read) and output tokens per accepted
task, and the cost at the configured list prices (agents/llm/prices.toml or $SANDFORGE_PRICES):
for the recorded model and for the other models of the same provider in the table.

`--record` runs N candidates against a live OpenAI-compatible server (e.g. the local
SmolLM2 of scripts/llm_server.sh), writes them as the cassette `compatible_<model>_batch`
(the server's real replies, with each call's wall time) and then reports every run; a
recorded run's real time and output tokens per second per role print beside its costs.

Exit code 0 when every run replayed; 1 if a run asked for a call that is not recorded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "llm"
TARGET_USD = 0.10  # per accepted task, at the list prices of a mid-tier model
FAMILIES = {"anthropic": "claude-", "openai": "gpt-", "openai-compatible": ""}


def recorded_runs() -> list[str]:
    return sorted(
        p.stem for p in FIXTURES.glob("*.json") if "candidates" in json.loads(p.read_text())
    )


def replay_run(name: str, scratch: Path) -> dict[str, Any]:
    """Every candidate of one cassette through the pipeline; its ledger and verdicts."""
    from sandforge.agents.llm import structured
    from sandforge.agents.llm.replay import load_cassette, replayed_provider
    from sandforge.seeds.registry import load_all

    from sandforge.pipeline import Candidate
    from sandforge.stages import BUILDING, PLANNING

    cassette = load_cassette(FIXTURES / f"{name}.json")
    structured.forget_servers()  # each run negotiates as its recording did
    provider, transport = replayed_provider(cassette)
    cards = {c.id: c for c in load_all()}
    taken: set[tuple[str, str, str]] = set()
    usage, accepted = [], 0
    for i, drawn in enumerate(cassette["candidates"]):
        workdir = scratch / f"{name}-{i}"
        workdir.mkdir()
        candidate = Candidate(
            cards[drawn["seed_id"]], provider, i, drawn["rng_seed"], workdir, frozenset(taken)
        )
        for stage in (*PLANNING, *BUILDING):
            candidate = stage(candidate)
        if candidate.plan is not None:
            taken.add(candidate.plan.distinct_key)
        accepted += candidate.rejection is None
        usage += candidate.usage
    return {
        "run": name,
        "provider": cassette["provider"],
        "model": cassette["model"],
        "candidates": len(cassette["candidates"]),
        "accepted": accepted,
        "usage": usage,
        "unreplayed": transport.unmatched,
        "recorded_time": recorded_time(cassette),
    }


def recorded_time(cassette: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per role, the real wall time and output tokens of the answered calls, if recorded."""
    from sandforge.agents.llm.prompts import load_prompt

    role_of = {load_prompt(r).tool: r for r in ("strategist", "designer", "writer", "reviewer")}
    out: dict[str, dict[str, float]] = {}
    for item in cassette["interactions"]:
        response = item.get("response", {})
        if "recorded_seconds" not in item or response.get("status") != 200:
            continue
        role = out.setdefault(role_of.get(item["tool"], "other"), {"seconds": 0, "tokens": 0})
        role["seconds"] += item["recorded_seconds"]
        role["tokens"] += response["body"].get("usage", {}).get("completion_tokens", 0)
    return out


def record_run(base_url: str, model: str, seed_id: str, n: int, scratch: Path) -> str:
    """N candidates from `seed_id` against a live server, written as a cassette; its name."""
    import httpx2
    from sandforge.agents.llm.replay import RecordingTransport
    from sandforge.agents.providers import BASE_URL_ENV, get_provider
    from sandforge.seeds.registry import load_all

    from sandforge.pipeline import Candidate
    from sandforge.stages import BUILDING, PLANNING, rejected_on_failure, run_stages

    os.environ[BASE_URL_ENV] = base_url
    transport = RecordingTransport()
    client = httpx2.Client(transport=transport, timeout=600)
    provider = get_provider("openai-compatible", model, http_client=client)
    card = next(c for c in load_all() if c.id == seed_id)
    stages = (*PLANNING, *BUILDING)
    taken: set[tuple[str, str, str]] = set()
    drawn: list[dict[str, Any]] = []
    name = f"compatible_{re.sub(r'[^a-z0-9]+', '_', model.lower())}_batch"
    for i in range(n):
        rng_seed = 1000 + i
        workdir = scratch / f"record-{i}"
        workdir.mkdir()
        candidate = Candidate(card, provider, i, rng_seed, workdir, frozenset(taken))
        # A stage that raises rejects the candidate, as in a batch.
        candidate = rejected_on_failure(functools.partial(run_stages, stages=stages), candidate)
        if candidate.plan is not None:
            taken.add(candidate.plan.distinct_key)
        verdict = candidate.rejection
        said = f"rejected at {verdict.stage}: {verdict.reason}" if verdict else "accepted"
        print(f"candidate {i}: {said}", flush=True)
        drawn.append({"seed_id": seed_id, "rng_seed": rng_seed})
        cassette = {
            "provider": "openai-compatible",
            "model": model,
            "origin": "recorded from a live server by python -m bench.llm_cost --record",
            "candidates": drawn,
            "interactions": transport.interactions,
        }
        # Written after every candidate: a long run stopped early keeps what it finished.
        (FIXTURES / f"{name}.json").write_text(json.dumps(cassette, indent=1) + "\n")
    return name


def per_provider(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per provider: per-role figures divided by accepted tasks, and costs at list prices."""
    from sandforge.agents.llm.cost import TOKENS, price_for, price_table, totals

    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        grouped[run["provider"]].append(run)
    out = []
    for provider, group in sorted(grouped.items()):
        accepted = sum(r["accepted"] for r in group)
        usage = [e for r in group for e in r["usage"]]
        roles = {}
        for role in sorted({e["role"] for e in usage}):
            entries = [e for e in usage if e["role"] == role]
            total = totals(entries)
            each = {k: round(total[k] / max(accepted, 1), 2) for k in ("calls", *TOKENS)}
            roles[role] = {**each, "cost_usd": round(total["cost_usd"] / max(accepted, 1), 5)}
        models = sorted({e["model"] for e in usage})
        family = FAMILIES[provider]
        alternatives = [m for m in price_table() if family and m.startswith(family)]
        at_prices = {}
        for model in [*models, *(m for m in alternatives if m not in models)]:
            price = price_for(provider, model)
            spent = sum(price.cost(e) for e in usage)
            at_prices[model] = round(spent / max(accepted, 1), 5)
        out.append(
            {
                "provider": provider,
                "runs": [r["run"] for r in group],
                "candidates": sum(r["candidates"] for r in group),
                "accepted": accepted,
                "recorded_models": models,
                "per_accepted_task_by_role": roles,
                "per_accepted_task_usd": at_prices,
                "recorded_time": {r["run"]: r.get("recorded_time") for r in group},
            }
        )
    return out


def print_report(report: list[dict[str, Any]]) -> None:
    out = Console(width=None if sys.stdout.isatty() else 120)
    columns = ("calls", "input", "cache write", "cache read", "output", "cost")
    keys = (
        "calls",
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    )
    for group in report:
        model = group["recorded_models"][0]
        table = Table(
            title=f"{group['provider']} ({', '.join(group['runs'])}): {group['candidates']} "
            f"candidates, {group['accepted']} accepted; per accepted task, at {model} prices"
        )
        table.add_column("role")
        for column in columns:
            table.add_column(column, justify="right")
        sums = dict.fromkeys((*keys, "cost_usd"), 0.0)
        for role, figures in group["per_accepted_task_by_role"].items():
            table.add_row(role, *(f"{figures[k]:g}" for k in keys), f"${figures['cost_usd']:.4f}")
            for k in sums:
                sums[k] += figures[k]
        table.add_row(
            "[bold]total[/bold]", *(f"{sums[k]:g}" for k in keys), f"${sums['cost_usd']:.4f}"
        )
        out.print(table)
        for run, timing in group["recorded_time"].items():
            for role, figures in (timing or {}).items():
                speed = figures["tokens"] / figures["seconds"] if figures["seconds"] else 0
                out.print(
                    f"  {run}, real time: {role} {figures['seconds']:.1f} s for "
                    f"{figures['tokens']:g} output tokens ({speed:.1f} tokens/s)",
                    highlight=False,
                )
        for name, usd in group["per_accepted_task_usd"].items():
            verdict = "met" if usd <= TARGET_USD else "missed"
            note = " (recorded)" if name in group["recorded_models"] else ""
            out.print(
                f"  at {name} list prices{note}: ${usd:.4f} per accepted task "
                f"(target <= ${TARGET_USD:.2f}: {verdict})",
                highlight=False,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.llm_cost", description=__doc__)
    parser.add_argument("runs", nargs="*", help="cassette names (default: every recorded run)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--record", metavar="URL", help="first record a run from this server")
    parser.add_argument("--model", default="smollm2", help="the served model (--record)")
    parser.add_argument("--seed-card", default="spaceship-titanic", help="seed (--record)")
    parser.add_argument("--candidates", type=int, default=8, help="candidates (--record)")
    args = parser.parse_args(argv)
    # Replays send nothing anywhere; the SDK clients still want a key to exist.
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        os.environ.setdefault(key, "replay-only")
    os.environ.setdefault("SANDFORGE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    warnings.filterwarnings("ignore", message="The model .* is deprecated")
    scratch = Path(tempfile.mkdtemp(prefix="sandforge-llm-bench-"))
    try:
        if args.record:
            record_run(args.record, args.model, args.seed_card, args.candidates, scratch)
        runs = [replay_run(name, scratch) for name in args.runs or recorded_runs()]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = per_provider(runs)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print_report(report)
    missing = [f"{r['run']}: {r['unreplayed']}" for r in runs if r["unreplayed"]]
    for line in missing:
        Console(stderr=True).print(f"[red]not recorded:[/red] {line}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
