"""Finding seed cards, and knowing which seeds would contaminate an MLE-bench-lite evaluation."""

from __future__ import annotations

import logging
from pathlib import Path

from sandforge.seeds.card import SeedCard, SeedCardError, load_card

CARDS_DIR = Path(__file__).parent / "cards"

LITE_FILE = Path(__file__).parent / "mlebench_lite.txt"


def _read_ids(path: Path) -> frozenset[str]:
    """Competition ids, one a line; '#' starts a comment."""
    lines = (line.partition("#")[0].strip() for line in path.read_text("utf-8").splitlines())
    return frozenset(line for line in lines if line)


# MLE-bench-lite: the usual evaluation split. Training on tasks mutated from these seeds
# contaminates that evaluation.
MLE_BENCH_LITE = _read_ids(LITE_FILE)

log = logging.getLogger(__name__)


class ContaminationError(ValueError):
    """A seed from the MLE-bench-lite evaluation split was asked for under --strict."""


def card_paths(cards_dir: Path | None = None) -> list[Path]:
    return sorted((cards_dir or CARDS_DIR).glob("*.yaml"))


def load_all(cards_dir: Path | None = None) -> list[SeedCard]:
    """Every card in the folder; one bad card fails loudly rather than vanishing."""
    errors, cards = [], []
    for path in card_paths(cards_dir):
        try:
            cards.append(load_card(path))
        except SeedCardError as exc:
            errors.append(str(exc))
    if errors:
        raise SeedCardError("\n".join(errors))
    return cards


def select(
    spec: str, *, strict: bool = False, warn: bool = True, cards_dir: Path | None = None
) -> list[SeedCard]:
    """Resolve `all` or a comma-separated list of ids to generatable cards.

    `all` means every generatable card. Lite seeds warn (unless `warn` is off, for a
    pre-check whose caller selects again), or raise under `strict`.
    """
    if not spec.strip(" ,"):
        raise SeedCardError(
            f"empty seed list {spec!r}: give 'all' or comma-separated seed ids "
            "(`sandforge seeds list` shows them)"
        )
    cards = {c.id: c for c in load_all(cards_dir)}
    if spec.strip() == "all":
        chosen = [c for c in cards.values() if c.generatable]
    else:
        ids = [s.strip() for s in spec.split(",") if s.strip()]
        unknown = [i for i in ids if i not in cards]
        if unknown:
            raise SeedCardError(
                f"unknown seed id(s) {unknown}; `sandforge seeds list` shows the known ones"
            )
        blocked = [i for i in ids if not cards[i].generatable]
        if blocked:
            reasons = "; ".join(f"{i}: {cards[i].not_generatable_reason}" for i in blocked)
            raise SeedCardError(f"seed(s) not generatable yet: {reasons}")
        chosen = [cards[i] for i in dict.fromkeys(ids)]
    lite = [c.id for c in chosen if c.id in MLE_BENCH_LITE]
    if lite:
        message = (
            f"{len(lite)} seed(s) are in the MLE-bench-lite evaluation split; tasks mutated "
            f"from them contaminate that evaluation: {', '.join(lite)}"
        )
        if strict:
            raise ContaminationError(message + " (refused under --strict)")
        if warn:
            log.warning(message)
    return chosen
