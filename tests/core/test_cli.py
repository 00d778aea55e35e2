"""The command line's contract for bad input: clear messages and exit codes, no Prefect start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandforge.cli import EXIT_BAD_INPUT, EXIT_OK, main

SUBCOMMANDS = [
    [],
    ["seeds"],
    ["seeds", "list"],
    ["seeds", "validate"],
    ["generate"],
    ["inspect"],
    ["export"],
    ["regenerate"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "sandforge")
def test_every_command_has_help(words: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: sandforge" in capsys.readouterr().out


def test_seeds_list_json_is_machine_readable(capsys: pytest.CaptureFixture) -> None:
    assert main(["seeds", "list", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert {"id", "modality", "task_type", "metric", "generatable", "mle_bench_lite"} <= set(
        rows[0]
    )
    assert sum(r["generatable"] for r in rows) >= 4


def test_seeds_validate_accepts_the_shipped_cards() -> None:
    assert main(["seeds", "validate", str(Path("seeds/cards"))]) == EXIT_OK


def test_seeds_validate_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    card = Path("seeds/cards/spaceship-titanic.yaml").read_text()
    bad = tmp_path / "spaceship-titanic.yaml"
    bad.write_text(card.replace("metric: accuracy", "metric: vibes"))
    assert main(["seeds", "validate", str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "spaceship-titanic.yaml" in err and "metric" in err and "vibes" in err


def test_generate_unknown_seed_is_bad_input(capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", "--seeds", "no-such-competition", "--store", "unused"]) == (
        EXIT_BAD_INPUT
    )
    assert "no-such-competition" in capsys.readouterr().err


def test_generate_strict_refuses_a_lite_seed(capsys: pytest.CaptureFixture) -> None:
    args = ["generate", "--seeds", "leaf-classification", "--strict", "--store", "unused"]
    assert main(args) == EXIT_BAD_INPUT
    assert "MLE-bench-lite" in capsys.readouterr().err


def test_generate_rejects_a_non_positive_quota(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--per-seed", "0"])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "--per-seed" in capsys.readouterr().err


def test_inspect_of_a_missing_bundle_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as info:  # a bad argument: argparse's usage and exit 2
        main(["inspect", str(tmp_path / "nothing")])
    assert info.value.code == EXIT_BAD_INPUT
    assert "no bundle at" in capsys.readouterr().err


def test_export_rejects_an_unsupported_store(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["export", "--store", "ftp://example/bucket", "--out", "unused"])
    assert info.value.code == EXIT_BAD_INPUT
    assert "ftp://example/bucket" in capsys.readouterr().err
