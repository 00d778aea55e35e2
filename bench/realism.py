"""Measure generator realism over many offline recipes: signal share by column kind and
domain-constraint violations.

    .venv/bin/python -m bench.realism [--per-card 30] [--difficulty medium] [--json]

Recipes come from the offline agent path (extract, mutate, design) for every generatable
seed card and rng seeds 0..per-card-1; each is synthesized. Constraints are read straight from
the domain YAML files of this tree (`constraints:` and hard bounds, a "%" column in 0..100),
not from the recipe, so the same script measures code that does not know about them: run it
with an older checkout's interpreter and `--domains` pointing here to get a "before" figure.

- signal share: per column kind, the share of generated columns the hidden rule reads
  (directly, or as a part of a derived quantity it reads).
- violations: rows (train + test) breaking a declared constraint or bound, per domain.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

DOMAINS = Path(__file__).resolve().parents[1] / "agents" / "offline" / "domains"
KINDS = {"numeric": "numeric", "integer": "numeric", "categorical": "categorical"}


def recipes(per_card: int, difficulty: str = "medium") -> Iterator[Any]:
    """Offline recipes for every generatable card and rng seeds 0..per_card-1."""
    from sandforge.agents.providers import get_provider
    from sandforge.seeds.registry import load_all

    provider = get_provider()
    try:
        from sandforge.agents.difficulty import with_difficulty
    except ImportError:  # a tree from before the knob: every plan is "medium"

        def with_difficulty(plan, _difficulty, _seed):  # type: ignore[no-redef]
            return plan

    for card in (c for c in load_all() if c.generatable):
        dna = provider.extractor.extract(card)
        for seed in range(per_card):
            plan = with_difficulty(
                provider.strategist.mutate(dna, seed, frozenset()), difficulty, seed
            )
            yield provider.designer.design(dna, plan, seed)


def read_facts(directory: Path = DOMAINS) -> dict[str, dict[str, Any]]:
    """Per domain: its constraints and each feature's hard bounds, from the raw YAML."""
    facts = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        bounds = {}
        for f in data["features"]:
            low, high = f.get("minimum"), f.get("maximum")
            if f.get("unit") == "%":
                low, high = (0 if low is None else low), (100 if high is None else high)
            if low is not None or high is not None:
                bounds[f["name"]] = (low, high)
        facts[data["name"]] = {"constraints": data.get("constraints", []), "bounds": bounds}
    return facts


def violations(domain: dict[str, Any], table: pl.DataFrame) -> Counter:
    """Rows of `table` breaking each declared fact whose columns it has."""
    found: Counter = Counter()
    columns = set(table.columns)
    for c in domain["constraints"]:
        names = [c["column"], c.get("bound") or c.get("when")]
        if not set(names) <= columns:
            continue
        column = pl.col(c["column"])
        if c["kind"] == "at_most":
            broken = column > pl.col(c["bound"])
        else:
            broken = (pl.col(c["when"]) == c["when_value"]) & (column != c.get("value", 0))
        label = f"{c['column']} {'<=' if c['kind'] == 'at_most' else '|'} {names[1]}"
        found[label] += int(table.select(broken.fill_null(False).sum()).item())
    for name, (low, high) in domain["bounds"].items():
        if name in columns:
            values = table.get_column(name).drop_nulls().to_numpy().astype(float)
            low, high = -np.inf if low is None else low, np.inf if high is None else high
            found[f"{name} in [{low:g}, {high:g}]"] += int(((values < low) | (values > high)).sum())
    return found


def measure(per_card: int, difficulty: str, directory: Path) -> dict[str, Any]:
    from sandforge.synthesis.synthesize import synthesize

    facts = read_facts(directory)
    kinds: dict[str, Counter] = defaultdict(Counter)
    broken: dict[str, Counter] = defaultdict(Counter)
    rows: Counter = Counter()
    recipes_by_domain: Counter = Counter()
    for recipe in recipes(per_card, difficulty):
        derived = getattr(recipe, "derived", [])
        parts = {n for d in derived if getattr(d, "role", "signal") == "signal" for n in d.of}
        for f in recipe.features:
            kind = KINDS.get(f.kind, "boolean")
            kinds[kind]["columns"] += 1
            kinds[kind]["signal"] += f.role == "signal" or f.name in parts
        data = synthesize(recipe)
        table = pl.concat([data.train.select(data.test.columns), data.test])
        broken[recipe.domain].update(violations(facts[recipe.domain], table))
        rows[recipe.domain] += table.height
        recipes_by_domain[recipe.domain] += 1
    share = {k: round(c["signal"] / c["columns"], 3) for k, c in sorted(kinds.items())}
    return {
        "recipes": sum(recipes_by_domain.values()),
        "signal_share_by_kind": share,
        "columns_by_kind": {k: c["columns"] for k, c in sorted(kinds.items())},
        "violating_rows": {
            d: {k: v for k, v in sorted(broken[d].items()) if v} for d in sorted(recipes_by_domain)
        },
        "violations_total": sum(sum(c.values()) for c in broken.values()),
        "rows_checked": sum(rows.values()),
    }


def _score(recipe: Any, data: Any, columns: list[str], categorical: list[str]) -> float:
    """Test score, higher better, of a regularized linear model (imputed, scaled numbers;
    one-hot `categorical`): AUC for binary tasks, minus RMSE for regression."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in columns if c not in categorical]
    train, test = (f.select(columns).to_pandas() for f in (data.train, data.test))
    for frame in (train, test):
        frame[categorical] = frame[categorical].astype(str)
    steps = [(make_pipeline(SimpleImputer(), StandardScaler()), numeric)]
    steps += [(OneHotEncoder(handle_unknown="ignore"), categorical)] if categorical else []
    target = recipe.targets[0].name
    y, truth = data.train[target].to_numpy(), data.answers[target].to_numpy()
    binary = recipe.task_type.value == "binary"
    model = make_pipeline(
        make_column_transformer(*steps), LogisticRegression() if binary else Ridge()
    ).fit(train, y)
    if binary:
        return float(roc_auc_score(truth, model.predict_proba(test)[:, 1]))
    return -float(np.sqrt(np.mean((model.predict(test) - truth) ** 2)))


def craft(per_card: int) -> dict[str, Any]:
    """Binary and regression recipes: how often one-hot encoding the categorical and boolean
    columns beats dropping them, with the same linear model."""
    from sandforge.synthesis.synthesize import synthesize

    wins = []
    for recipe in recipes(per_card):
        if recipe.task_type.value not in ("binary", "regression"):
            continue
        data = synthesize(recipe)
        numeric = [f.name for f in recipe.features if f.kind in ("numeric", "integer")]
        others = [f.name for f in recipe.features if f.name not in numeric]
        proper = _score(recipe, data, numeric + others, others)
        wins.append(proper > _score(recipe, data, numeric, []))
    return {"tasks": len(wins), "proper_preprocessing_wins": round(float(np.mean(wins)), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-card", type=int, default=30)
    parser.add_argument("--difficulty", default="medium", choices=("easy", "medium", "hard"))
    parser.add_argument("--domains", type=Path, default=DOMAINS, help="domain YAML folder")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--craft", action="store_true", help="also: one-hot vs dropping categoricals"
    )
    args = parser.parse_args(argv)
    result = measure(args.per_card, args.difficulty, args.domains)
    if args.craft:
        result["craft"] = craft(args.per_card)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"recipes: {result['recipes']}, rows checked: {result['rows_checked']}")
        for kind, share in result["signal_share_by_kind"].items():
            print(f"signal share {kind:12s} {share:.3f} of {result['columns_by_kind'][kind]}")
        print(f"violating rows: {result['violations_total']}")
        if "craft" in result:
            c = result["craft"]
            print(
                f"one-hot beats dropping categoricals on {c['proper_preprocessing_wins']:.1%}"
                f" of {c['tasks']} binary/regression tasks"
            )
        for domain, found in result["violating_rows"].items():
            for label, count in found.items():
                print(f"  {domain}: {label}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
