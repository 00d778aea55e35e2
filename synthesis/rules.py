"""Hidden generative rules: a latent score per row from the signal features.

Each family draws its own coefficients from the RNG it is given, so a recipe's seed fixes the
rule without writing coefficients anywhere. Every latent is standardized (mean 0, sd 1) so
signal strength and noise mean the same thing whatever the family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Rule = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _standardize(f: np.ndarray) -> np.ndarray:
    sd = f.std()
    return (f - f.mean()) / (sd if sd > 1e-12 else 1.0)


def _signed_weights(rng: np.random.Generator, k: int) -> np.ndarray:
    """Weights bounded away from zero, so every signal feature really matters."""
    return rng.uniform(0.5, 1.5, size=k) * rng.choice([-1.0, 1.0], size=k)


def linear(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x @ _signed_weights(rng, x.shape[1])


def interactions(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = x.shape[1]
    f = 0.5 * (x @ _signed_weights(rng, k))
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)] or [(0, 0)]
    chosen = rng.permutation(len(pairs))[: min(3, len(pairs))]
    for index in chosen:
        a, b = pairs[index]
        f = f + rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.4) * x[:, a] * x[:, b]
    return f


def thresholds(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few depth-2 trees: steps on one feature, split again on another."""
    k = x.shape[1]
    f = np.zeros(x.shape[0])
    for _ in range(max(3, k)):
        a, b = rng.integers(0, k, size=2)
        cut_a, cut_b = rng.uniform(-0.7, 0.7, size=2)
        left, right = _signed_weights(rng, 2)
        step = np.where(x[:, b] > cut_b, right, left)
        f = f + np.where(x[:, a] > cut_a, step, -0.5 * step)
    return f


def periodic(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = x.shape[1]
    f = 0.3 * (x @ _signed_weights(rng, k))
    for column in range(k):
        frequency = rng.uniform(1.2, 2.5)
        phase = rng.uniform(0.0, 2 * np.pi)
        f = f + rng.uniform(0.8, 1.3) * np.sin(frequency * x[:, column] + phase)
    return f


def sparse(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two features carry everything, one of them bent; the rest of the table is noise."""
    k = x.shape[1]
    a, b = (0, 1) if k > 1 else (0, 0)
    wa, wb = _signed_weights(rng, 2)
    return wa * x[:, a] + wb * np.tanh(1.5 * x[:, b]) + 0.5 * x[:, a] * x[:, b]


RULES: dict[str, Rule] = {
    "linear": linear,
    "interactions": interactions,
    "thresholds": thresholds,
    "periodic": periodic,
    "sparse": sparse,
}


Slope = tuple[np.ndarray, np.ndarray, int]  # standardized column, category codes, levels


def latent(
    family: str, x: np.ndarray, rng: np.random.Generator, slopes: list[Slope] | None = None
) -> np.ndarray:
    """Standardized latent score of `family` over the standardized signal matrix `x`.

    Each slope adds a numeric x categorical interaction: the column's effect has a
    different sign and size in each category level, so pooling the levels hides it.
    """
    f = _standardize(RULES[family](x, rng))
    for column, codes, levels in slopes or []:
        by_level = rng.standard_normal(levels) + rng.choice([-1.0, 1.0]) * 0.5
        f = f + rng.uniform(0.7, 1.1) * _standardize(by_level[codes] * column)
    return _standardize(f)
