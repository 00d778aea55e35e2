"""Seed cards: the shipped catalogue, the MLE-bench-lite guard, and loud failures on bad cards."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandforge.seeds.card import Modality, Quirk, SeedCard, SeedCardError, load_card
from sandforge.seeds.registry import (
    CARDS_DIR,
    LITE_FILE,
    MLE_BENCH_LITE,
    ContaminationError,
    card_paths,
    load_all,
    select,
)
from sandforge.validators.metrics import GENERATABLE_TASK_TYPES, TaskType, metric_info

# shared/ lies beside the repository (CI lays a copy there); found relative to this file.
SEEDS_MD = Path(__file__).resolve().parents[2].parent / "shared" / "SEEDS.md"
needs_seeds_md = pytest.mark.skipif(
    not SEEDS_MD.is_file(), reason=f"no shared/SEEDS.md beside the repository ({SEEDS_MD})"
)


def seeds_md_rows() -> dict[str, bool]:
    """Every competition SEEDS.md lists -> whether it is marked (L), MLE-bench-lite."""
    rows = re.findall(r"^\| ([A-Za-z0-9][A-Za-z0-9._-]*)( \(L\))? \|", SEEDS_MD.read_text(), re.M)
    return {name: bool(mark) for name, mark in rows if name != "id"}  # minus the header row


@pytest.fixture(scope="module")
def cards() -> dict[str, SeedCard]:
    return {c.id: c for c in load_all()}


# --- the shipped catalogue ---------------------------------------------------------------


def test_every_shipped_card_loads(cards: dict[str, SeedCard]) -> None:
    paths = card_paths()
    assert len(paths) == len(cards)
    for path in paths:
        assert load_card(path).id == path.stem


def test_catalogue_size_and_coverage(cards: dict[str, SeedCard]) -> None:
    assert len(cards) >= 40
    generatable = [c for c in cards.values() if c.generatable]
    fresh = [c for c in generatable if c.id not in MLE_BENCH_LITE]
    assert len(fresh) >= 20, "too few generatable seeds outside MLE-bench-lite"
    assert {c.task_type for c in fresh} == set(GENERATABLE_TASK_TYPES)
    assert any(c.modality != Modality.TABULAR for c in cards.values())
    assert any(f.missing_rate > 0 for c in generatable for f in c.features)


# Quirks that synthesis turns into generator mechanisms: each must appear on a generatable card.
CRAFT_QUIRKS = {
    Quirk.CLASS_IMBALANCE,
    Quirk.MISSING_VALUES,
    Quirk.TIME_COLUMN,
    Quirk.GEO_FEATURES,
    Quirk.HIGH_CARDINALITY,
    Quirk.LEAKAGE_TRAP,
    Quirk.GROUPED_ENTITIES,
    Quirk.HEAVY_TAILS,
    Quirk.COMPOSITIONAL,
    Quirk.DESCRIPTOR_FAMILIES,
}


def test_generatable_cards_outside_lite_carry_every_craft_quirk(
    cards: dict[str, SeedCard],
) -> None:
    fresh = [c for c in cards.values() if c.generatable and c.id not in MLE_BENCH_LITE]
    missing = CRAFT_QUIRKS - {q for c in fresh for q in c.quirks}
    assert not missing, sorted(missing)


# A column's declared role or type implies the quirk that names it, so DNA built from the
# quirks list alone never misses what the schema shows.
IMPLIED_QUIRK = {
    ("role", "leak"): Quirk.LEAKAGE_TRAP,
    ("role", "group"): Quirk.GROUPED_ENTITIES,
    ("role", "time"): Quirk.TIME_COLUMN,
    ("type", "geo"): Quirk.GEO_FEATURES,
    ("type", "datetime"): Quirk.TIME_COLUMN,
}


def test_column_roles_are_declared_as_quirks(cards: dict[str, SeedCard]) -> None:
    for card in cards.values():
        for feature in card.features:
            for (field, value), quirk in IMPLIED_QUIRK.items():
                if getattr(feature, field) == value:
                    assert quirk in card.quirks, (card.id, feature.name, quirk.value)


def test_generatable_cards_are_tabular_and_gradable(cards: dict[str, SeedCard]) -> None:
    for card in cards.values():
        if card.generatable:
            assert card.modality == Modality.TABULAR, card.id
            assert metric_info(card.metric).implemented, card.id
        else:
            assert card.not_generatable_reason, card.id


def test_class_targets_declare_their_classes(cards: dict[str, SeedCard]) -> None:
    for card in cards.values():
        if card.task_type in (TaskType.MULTICLASS, TaskType.ORDINAL):
            assert all(t.n_classes for t in card.targets), card.id


def test_mle_bench_lite_list_is_read_from_its_data_file() -> None:
    ids = [line for line in LITE_FILE.read_text().splitlines() if not line.startswith("#")]
    assert len(ids) == len(set(ids)) == len(MLE_BENCH_LITE) == 22
    assert set(ids) == MLE_BENCH_LITE


@needs_seeds_md
def test_mle_bench_lite_file_matches_the_lite_rows_of_seeds_md() -> None:
    lite = {name for name, is_lite in seeds_md_rows().items() if is_lite}
    assert lite == MLE_BENCH_LITE


def test_mle_bench_lite_file_is_packaged() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]["sandforge.seeds"]
    assert LITE_FILE.name in package_data


# --- select() ----------------------------------------------------------------------------


def test_select_all_returns_every_generatable_card(cards: dict[str, SeedCard]) -> None:
    chosen = select("all")
    assert chosen
    assert all(c.generatable for c in chosen)
    assert {c.id for c in chosen} == {c.id for c in cards.values() if c.generatable}


def test_select_lite_seed_warns_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sandforge.seeds.registry"):
        chosen = select("tabular-playground-series-dec-2021")
    assert [c.id for c in chosen] == ["tabular-playground-series-dec-2021"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "MLE-bench-lite" in warnings[0].getMessage()
    assert "tabular-playground-series-dec-2021" in warnings[0].getMessage()


def test_select_non_lite_seed_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sandforge.seeds.registry"):
        chosen = select("spaceship-titanic, spaceship-titanic")
    assert [c.id for c in chosen] == ["spaceship-titanic"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_select_lite_seed_strict_raises() -> None:
    with pytest.raises(ContaminationError, match="new-york-city-taxi-fare-prediction"):
        select("spaceship-titanic,new-york-city-taxi-fare-prediction", strict=True)


def test_select_unknown_id_raises_naming_it() -> None:
    with pytest.raises(SeedCardError, match="no-such-competition"):
        select("spaceship-titanic,no-such-competition")


def test_select_non_generatable_raises_naming_it() -> None:
    with pytest.raises(SeedCardError, match="aerial-cactus-identification") as info:
        select("aerial-cactus-identification")
    assert "not generatable" in str(info.value)


# --- malformed cards ---------------------------------------------------------------------


def _base() -> dict[str, Any]:
    return yaml.safe_load((CARDS_DIR / "spaceship-titanic.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: object, name: str = "spaceship-titanic") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _drop_metric(d: dict[str, Any]) -> None:
    del d["metric"]


def _duplicate_feature(d: dict[str, Any]) -> None:
    d["features"].append({"name": "Age", "type": "integer"})


def _feature_named_like_id(d: dict[str, Any]) -> None:
    d["features"].append({"name": "PassengerId", "type": "categorical"})


def _image_generatable(d: dict[str, Any]) -> None:
    d["modality"] = "image"


def _no_reason(d: dict[str, Any]) -> None:
    d["generatable"] = False


def _multilabel_one_target(d: dict[str, Any]) -> None:
    d.update(task_type="multilabel", metric="mean_columnwise_roc_auc")


def _submission_without_id(d: dict[str, Any]) -> None:
    d["submission"]["columns"] = ["Passenger", "Transported"]


def _missing_rate_one(d: dict[str, Any]) -> None:
    d["features"][0]["missing_rate"] = 1.0


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("missing-field", _drop_metric, "metric", "Field required"),
    ("unknown-metric", lambda d: d.update(metric="f2"), "metric", "unknown metric 'f2'"),
    (
        "metric-wrong-task",
        lambda d: d.update(metric="rmse", direction="lower"),
        "metric",
        "does not fit task type 'binary'",
    ),
    ("wrong-direction", lambda d: d.update(direction="lower"), "direction", "higher-is-better"),
    ("bad-direction-value", lambda d: d.update(direction="up"), "direction", "'higher' or 'lower'"),
    ("unknown-task-type", lambda d: d.update(task_type="clustering"), "task_type", "Input should"),
    ("duplicate-feature", _duplicate_feature, "features", "duplicate column names ['Age']"),
    ("feature-is-id", _feature_named_like_id, "features", "duplicate column names ['PassengerId']"),
    ("generatable-image", _image_generatable, "generatable", "only tabular cards"),
    ("no-reason", _no_reason, "not_generatable_reason", "required when generatable is false"),
    ("multilabel-one-target", _multilabel_one_target, "targets", "needs >= 2 targets"),
    ("submission-no-id", _submission_without_id, "submission.columns", "'PassengerId'"),
    ("extra-field", lambda d: d.update(colour="red"), "colour", "Extra inputs"),
    ("missing-rate-one", _missing_rate_one, "features.HomePlanet.missing_rate", "less than 1"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_card_names_file_field_and_problem(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], field: str, problem: str
) -> None:
    data = _base()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(SeedCardError) as info:
        load_card(path)
    message = str(info.value)
    assert str(path) in message
    assert f"field {field!r}" in message
    assert problem in message


def test_id_not_matching_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _base(), name="some-other-id")
    with pytest.raises(SeedCardError) as info:
        load_card(path)
    message = str(info.value)
    assert str(path) in message
    assert "field 'id'" in message
    assert "'spaceship-titanic' must equal the file name" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\nfeatures: [unclosed\n", encoding="utf-8")
    with pytest.raises(SeedCardError) as info:
        load_card(path)
    assert str(path) in str(info.value)
    assert "not valid YAML" in str(info.value)


@pytest.mark.parametrize("text", ["- just\n- a list\n", "a plain string\n", ""])
def test_card_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "listy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SeedCardError) as info:
        load_card(path)
    assert str(path) in str(info.value)
    assert "must be a YAML mapping" in str(info.value)


def test_unreadable_card(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SeedCardError, match="cannot read"):
        load_card(path)


def test_load_all_names_the_bad_card(tmp_path: Path) -> None:
    good = _write(tmp_path, _base())
    bad_data = _base()
    bad_data.update(id="zz-bad", metric="f2_score")
    bad = _write(tmp_path, bad_data, name="zz-bad")
    with pytest.raises(SeedCardError) as info:
        load_all(tmp_path)
    message = str(info.value)
    assert str(bad) in message
    assert "unknown metric" in message
    assert str(good) not in message


def test_load_all_and_select_use_the_given_folder(tmp_path: Path) -> None:
    _write(tmp_path, _base())
    assert [c.id for c in load_all(tmp_path)] == ["spaceship-titanic"]
    assert [c.id for c in select("all", cards_dir=tmp_path)] == ["spaceship-titanic"]
