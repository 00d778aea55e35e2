"""Task DNA straight from the card's declared structure: no judgement needed offline."""

from __future__ import annotations

from collections import Counter

from sandforge.agents.dna import TaskDNA
from sandforge.seeds.card import SeedCard


class CardDnaExtractor:
    def extract(self, card: SeedCard) -> TaskDNA:
        classes = [t.n_classes for t in card.targets if t.n_classes]
        return TaskDNA(
            seed_id=card.id,
            task_type=card.task_type,
            metric=card.metric,
            n_features=len(card.features),
            feature_kinds=dict(sorted(Counter(f.type for f in card.features).items())),
            n_targets=len(card.targets),
            n_classes=max(classes) if classes else None,
            max_missing_rate=max(f.missing_rate for f in card.features),
            quirks=list(card.quirks),
            summary=card.summary,
        )
