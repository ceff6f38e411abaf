"""Shapley / Owen values of a small cooperative game, by averaging over orders.

The players are grouped in unions (e.g. the methodology union holds one player per quirk).
The Owen value averages the marginal contributions over every order in which each union's
players come together; with one player per union it is the Shapley value. Every order's
marginal contributions add up to ``v(all) - v(none)``, so the average does too, exactly.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator

import numpy as np

#: Enumerate every admissible order up to this many; sample (with reversed pairs) beyond.
MAX_ORDERS = 5040
SAMPLED_ORDERS = 400


def _orders(unions: dict[str, list[str]], seed: int) -> tuple[list[tuple[str, ...]], bool]:
    names = list(unions)
    count = math.factorial(len(names)) * math.prod(math.factorial(len(m)) for m in unions.values())
    if count <= MAX_ORDERS:
        out = []
        for uo in itertools.permutations(names):
            for inner in itertools.product(*(itertools.permutations(unions[u]) for u in uo)):
                out.append(tuple(p for part in inner for p in part))
        return out, True
    rng = random.Random(seed)
    out = []
    for _ in range(SAMPLED_ORDERS // 2):
        uo = names[:]
        rng.shuffle(uo)
        order: list[str] = []
        for u in uo:
            m = unions[u][:]
            rng.shuffle(m)
            order += m
        out += [tuple(order), tuple(reversed(order))]  # reversal keeps A<->B antisymmetry
    return out, False


def owen_values(unions: dict[str, list[str]], value: Callable[[frozenset[str]], np.ndarray],
                seed: int = 0) -> tuple[dict[str, np.ndarray], bool]:
    """Owen value of every player.

    Parameters
    ----------
    unions : dict
        Union name -> its players (player names unique across unions).
    value : callable
        ``value(coalition)`` -> vector of scores (numpy array); called once per distinct
        coalition met (the caller caches engine runs).
    seed : int
        Seed of the order sampling used when there are more than :data:`MAX_ORDERS` orders.

    Returns
    -------
    (dict, bool)
        Player -> contribution vector, and whether every order was enumerated (exact).
    """
    orders, exact = _orders(unions, seed)
    players = [p for m in unions.values() for p in m]
    memo: dict[frozenset[str], np.ndarray] = {}

    def v(s: frozenset[str]) -> np.ndarray:
        if s not in memo:
            memo[s] = np.asarray(value(s), dtype=float)
        return memo[s]

    phi = {p: 0.0 for p in players}
    for order in orders:
        s: frozenset[str] = frozenset()
        prev = v(s)
        for p in order:
            s = s | {p}
            cur = v(s)
            phi[p] = phi[p] + (cur - prev)
            prev = cur
    n = len(orders)
    return {p: np.asarray(phi[p], dtype=float) / n for p in players}, exact


def coalitions(players: list[str]) -> Iterator[frozenset[str]]:
    """Every subset of ``players`` (for callers that want to pre-compute the game)."""
    for r in range(len(players) + 1):
        for c in itertools.combinations(players, r):
            yield frozenset(c)
