"""What LLM calls cost: a configurable list-price table and the ledger's totals.

Every call a role makes is one ledger entry on its candidate (`Candidate.usage`): provider,
model, role, prompt version and the four token counts. This module prices entries, sums them
per task (the manifest's `llm` section) and per batch, and gives the flow the number its
`--budget` stop rule compares.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sandforge.pipeline import Candidate

PRICES_ENV = "SANDFORGE_PRICES"
DEFAULT_PRICES = Path(__file__).parent / "prices.toml"
TOKENS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
SELF_HOSTED = "openai-compatible"  # unlisted models of this provider cost nothing


class UnknownPriceError(ValueError):
    pass


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    def cost(self, entry: dict[str, Any]) -> float:
        per_token = (
            entry["input_tokens"] * self.input
            + entry["output_tokens"] * self.output
            + entry["cache_creation_input_tokens"] * self.cache_write
            + entry["cache_read_input_tokens"] * self.cache_read
        )
        return per_token / 1_000_000


FREE = Price(0.0, 0.0, 0.0, 0.0)


def prices_path() -> Path:
    return Path(os.environ.get(PRICES_ENV) or DEFAULT_PRICES)


@functools.cache
def _load(path: Path) -> dict[str, Price]:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
        return {name: Price(**fields) for name, fields in table["models"].items()}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise UnknownPriceError(f"{path}: not a usable price table: {exc}") from None


def price_table() -> dict[str, Price]:
    """The configured list prices by model name."""
    return _load(prices_path())


def price_for(provider: str, model: str) -> Price:
    """The listed price of `model` (exact name, else the longest listed prefix)."""
    table = price_table()
    names = [name for name in table if model == name or model.startswith(f"{name}-")]
    if names:
        return table[max(names, key=len)]
    if provider == SELF_HOSTED:
        return FREE
    raise UnknownPriceError(
        f"no list price for model {model!r} in {prices_path()}; add it there, or set "
        f"{PRICES_ENV} to a table that has it"
    )


def call_cost_usd(entry: dict[str, Any]) -> float:
    return price_for(entry["provider"], entry["model"]).cost(entry)


def totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Calls, the four token counts and the cost of some ledger entries."""
    entries = list(entries)
    out: dict[str, Any] = {"calls": len(entries)}
    for field in TOKENS:
        out[field] = sum(e[field] for e in entries)
    out["cost_usd"] = round(sum(call_cost_usd(e) for e in entries), 6)
    return out


def timed_totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """`totals` plus the calls' wall time and output tokens per second.

    A local model's call time is its generation time; concurrent calls add up. Kept out of
    manifests, which record what was made, not how fast.
    """
    entries = list(entries)
    out = totals(entries)
    seconds = sum(e.get("seconds", 0.0) for e in entries)
    out["seconds"] = round(seconds, 3)
    out["output_tokens_per_s"] = round(out["output_tokens"] / seconds, 1) if seconds else None
    return out


def candidate_cost_usd(candidate: Candidate) -> float:
    """Money this candidate's LLM calls cost so far, at the configured prices."""
    return sum(call_cost_usd(e) for e in candidate.usage)


def manifest_record(usage: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest's `llm` section: every call, the task's total, prompts and prices used.

    None for the offline provider (no calls), so its manifests stay byte-identical.
    """
    if not usage:
        return None
    return {
        "calls": [
            {"role": e["role"], "model": e["model"], **{t: e[t] for t in TOKENS}}
            | {"cost_usd": round(call_cost_usd(e), 6)}
            for e in usage
        ],
        "total": totals(usage),
        "prompts": {
            e["role"]: {"version": e["prompt_version"], "sha256": e["prompt_sha256"]} for e in usage
        },
        # How each role's answer was forced (an openai-compatible server's is negotiated).
        "structured_output": {
            e["role"]: e["structured_output"] for e in usage if "structured_output" in e
        },
        "prices_usd_per_mtok": {
            e["model"]: asdict(price_for(e["provider"], e["model"])) for e in usage
        },
    }


def batch_report(candidates: Iterable[Candidate], accepted: int) -> dict[str, Any]:
    """The batch summary's `llm` section: totals, per role, and per accepted task.

    Rejected candidates' calls count too: they are what an accepted task really costs.
    """
    entries = [e for c in candidates for e in c.usage]
    total = timed_totals(entries)
    roles = sorted({e["role"] for e in entries})
    return {
        "total": total,
        "by_role": {role: timed_totals(e for e in entries if e["role"] == role) for role in roles},
        "per_accepted_task_usd": round(total["cost_usd"] / accepted, 6) if accepted else None,
    }
