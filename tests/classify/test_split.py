from __future__ import annotations

import numpy as np

from safestack.classify.training.split import grouped_split, near_duplicate_components


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_near_duplicates_join_one_component() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(4, 16))
    x = _unit(np.vstack([base, base[0] + 0.01 * rng.normal(size=16)]))
    comps = near_duplicate_components(["a", "b", "c", "d", "e"], x, threshold=0.95)
    assert comps[4] == comps[0]  # "e" is a rewording of "a"
    assert len({comps[1], comps[2], comps[3], comps[0]}) == 4


def test_groups_never_straddle_and_seed_fixes_split() -> None:
    groups = [f"g{i // 3}" for i in range(3000)]  # 1,000 groups of 3
    first = grouped_split(groups, test_fraction=0.2, seed=0)
    again = grouped_split(list(reversed(groups)), test_fraction=0.2, seed=0)[::-1]
    np.testing.assert_array_equal(first, again)  # order of reading does not matter
    for g in range(1000):
        assert len(set(first[3 * g : 3 * g + 3])) == 1
    assert 0.15 < first.mean() < 0.25
    other = grouped_split(groups, test_fraction=0.2, seed=1)
    assert (first != other).any()
