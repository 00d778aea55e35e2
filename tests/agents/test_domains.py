"""The domain library: enough varied domains, each rich enough to re-narrate any seed into."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sandforge.agents.offline.domains import (
    DOMAINS_DIR,
    Domain,
    DomainError,
    MulticlassTarget,
    RegressionTarget,
    load_domains,
)
from sandforge.agents.recipe import IDENTIFIER, NoiseSpec, Recipe, RuleSpec
from sandforge.validators.metrics import GENERATABLE_TASK_TYPES, metrics_for

DOMAINS = load_domains()
IDENT = re.compile(IDENTIFIER)
BANNED = ("titanic", "house_price", "housing_price", "iris", "mnist", "spaceship")


def test_library_has_at_least_ten_domains_sorted_and_named_after_files() -> None:
    assert len(DOMAINS) >= 10
    assert list(DOMAINS) == sorted(DOMAINS)
    assert {p.stem for p in DOMAINS_DIR.glob("*.yaml")} == set(DOMAINS)
    for name, domain in DOMAINS.items():
        assert domain.name == name
        assert not any(b in name for b in BANNED)


def test_load_domains_is_cached() -> None:
    assert load_domains()["urban_beekeeping"] is DOMAINS["urban_beekeeping"]
    assert load_domains(DOMAINS_DIR)["urban_beekeeping"] is DOMAINS["urban_beekeeping"]


def test_domains_are_varied() -> None:
    assert len({d.entity for d in DOMAINS.values()}) == len(DOMAINS)
    assert len({d.context for d in DOMAINS.values()}) == len(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS.values(), ids=list(DOMAINS))
def test_domain_meets_minimums(domain: Domain) -> None:
    kinds = [f.kind for f in domain.features]
    assert len(kinds) >= 16
    assert sum(k in ("numeric", "integer") for k in kinds) >= 8
    assert kinds.count("categorical") >= 3
    assert kinds.count("boolean") >= 2
    t = domain.targets
    assert len(t.binary) >= 2
    assert len(t.multiclass) >= 2
    assert len(t.ordinal) >= 1
    assert len(t.regression) >= 2
    assert len(t.multi_target_regression) >= 1
    assert all(2 <= len(g) <= 3 for g in t.multi_target_regression)
    assert len(t.multilabel) >= 1
    assert all(2 <= len(g) <= 4 for g in t.multilabel)
    for target in [*t.multiclass, *t.ordinal]:
        assert 3 <= len(target.classes) <= 6


@pytest.mark.parametrize("domain", DOMAINS.values(), ids=list(DOMAINS))
def test_names_are_identifiers_unique_and_do_not_collide(domain: Domain) -> None:
    features = [f.name for f in domain.features]
    targets = [t.name for t in domain.targets.every()]
    assert len(set(features)) == len(features)
    assert len(set(targets)) == len(targets)
    assert not set(features) & set(targets)
    taken = {*features, *targets, "id"}
    assert "id" not in features and "id" not in targets
    for name in [domain.name, *features, *targets]:
        assert IDENT.fullmatch(name), name
    for target in domain.targets.every():
        if isinstance(target, MulticlassTarget):
            assert len(set(target.classes)) == len(target.classes)
            for label in target.classes:
                assert IDENT.fullmatch(label), label
                assert label not in taken, (target.name, label)


@pytest.mark.parametrize("domain", DOMAINS.values(), ids=list(DOMAINS))
def test_feature_shapes_are_realistic(domain: Domain) -> None:
    for f in domain.features:
        assert f.description.strip()
        if f.kind in ("numeric", "integer"):
            assert f.low is not None and f.high is not None and f.low < f.high, f.name
        if f.kind == "integer":
            assert f.low is not None and f.high is not None
            assert f.low.is_integer() and f.high.is_integer(), f.name
        if f.kind == "categorical":
            assert f.categories and 3 <= len(f.categories) <= 8, f.name
            assert len(set(f.categories)) == len(f.categories)
        else:
            assert f.categories is None, f.name
    regressions: list[RegressionTarget] = [
        *domain.targets.regression,
        *(r for g in domain.targets.multi_target_regression for r in g),
    ]
    for r in regressions:
        assert r.scale > 0
        assert not (r.nonnegative and r.center < 0), r.name


@pytest.mark.parametrize("domain", DOMAINS.values(), ids=list(DOMAINS))
def test_vocabulary_builds_valid_recipes(domain: Domain) -> None:
    """Every target option, with the domain's features, must make a recipe synthesis accepts."""
    features = [f.column("signal") for f in domain.features]
    for task_type in sorted(GENERATABLE_TASK_TYPES):
        options = domain.target_options(task_type)
        assert options, task_type
        metric = metrics_for(task_type)[0].name
        for targets in options:
            Recipe(
                task_id=f"{domain.name}-{task_type.value}",
                seed_id="seed",
                domain=domain.name,
                title=domain.title,
                entity=domain.entity,
                task_type=task_type,
                metric=metric,
                id_column="id",
                features=features,
                targets=targets,
                rule=RuleSpec(family="linear", signal_strength=1.0),
                noise=NoiseSpec(),
                n_train=100,
                n_test=100,
                rng_seed=0,
            )


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _good() -> dict:
    return yaml.safe_load((DOMAINS_DIR / "urban_beekeeping.yaml").read_text(encoding="utf-8"))


def test_a_copied_good_file_loads_from_another_directory(tmp_path: Path) -> None:
    _write(tmp_path, "urban_beekeeping", _good())
    assert list(load_domains(tmp_path)) == ["urban_beekeeping"]


def test_bad_numeric_range_names_file_and_field(tmp_path: Path) -> None:
    data = _good()
    data["features"][3]["low"] = 90  # hive_weight_kg: low above high
    path = _write(tmp_path, "urban_beekeeping", data)
    with pytest.raises(DomainError) as err:
        load_domains(tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert "features.hive_weight_kg.high" in message


def test_unknown_key_and_bad_name_are_reported_for_every_bad_file(tmp_path: Path) -> None:
    extra = _good()
    extra["features"][0]["colour"] = "amber"
    _write(tmp_path, "urban_beekeeping", extra)
    bad_name = _good()
    bad_name["name"] = "a_hives"
    bad_name["targets"]["binary"][0]["name"] = "Swarm"
    _write(tmp_path, "a_hives", bad_name)
    with pytest.raises(DomainError) as err:
        load_domains(tmp_path)
    message = str(err.value)
    assert "urban_beekeeping.yaml: field 'features.colony_age_months.colour'" in message
    assert "a_hives.yaml: field 'targets.binary.Swarm.name'" in message


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = _good()
    del data["targets"]["ordinal"]
    _write(tmp_path, "urban_beekeeping", data)
    with pytest.raises(DomainError, match=r"urban_beekeeping\.yaml: field 'targets\.ordinal'"):
        load_domains(tmp_path)


def test_collisions_and_minimums_are_rejected(tmp_path: Path) -> None:
    data = _good()
    data["targets"]["binary"][0]["name"] = "queen_marked"  # a feature name
    _write(tmp_path, "urban_beekeeping", data)
    with pytest.raises(DomainError, match=r"field 'targets'.*queen_marked"):
        load_domains(tmp_path)

    data = _good()
    data["targets"]["multiclass"][0]["classes"][0] = "hive_type"  # a feature name
    _write(tmp_path, "urban_beekeeping", data)
    with pytest.raises(DomainError, match=r"field 'targets'.*hive_type"):
        load_domains(tmp_path)

    data = _good()
    data["features"] = [f for f in data["features"] if f["kind"] != "boolean"]
    _write(tmp_path, "urban_beekeeping", data)
    with pytest.raises(DomainError, match=r"field 'features'.*boolean"):
        load_domains(tmp_path)


def test_name_must_match_file_and_yaml_must_parse(tmp_path: Path) -> None:
    _write(tmp_path, "rooftop_bees", _good())
    with pytest.raises(DomainError, match=r"rooftop_bees\.yaml: field 'name'"):
        load_domains(tmp_path)
    (tmp_path / "rooftop_bees.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(DomainError, match=r"rooftop_bees\.yaml: not valid YAML"):
        load_domains(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DomainError, match="no domain files"):
        load_domains(tmp_path)
