"""The PDQ index is exact within its radius, on the scan path and the multi-index path."""

from __future__ import annotations

import numpy as np
import pytest

from safestack.errors import InputError
from safestack.hashing import PDQIndex, pdq_codes
from safestack.hashing._index import MULTI_INDEX_FROM


def _flip(code: np.ndarray, positions: list[int]) -> str:
    bits = np.unpackbits(code)
    bits[positions] ^= 1
    return np.packbits(bits).tobytes().hex()


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (MULTI_INDEX_FROM, 32), dtype=np.uint8)


@pytest.fixture(scope="module")
def index(codes: np.ndarray) -> PDQIndex:
    built = PDQIndex(codes)
    assert built.kind == "multi-index"
    return built


def test_every_code_within_31_bits_is_found_at_its_distance(
    codes: np.ndarray, index: PDQIndex
) -> None:
    rng = np.random.default_rng(1)
    for k in range(32):
        position = int(rng.integers(len(codes)))
        flipped = _flip(codes[position], list(rng.choice(256, k, replace=False)))
        assert index.nearest(flipped) == (position, k)


def test_the_worst_layout_is_still_found(codes: np.ndarray, index: PDQIndex) -> None:
    """31 flips spread so that as few tables as possible see the code within their probes."""
    position, bits, flips = 123, index.bits, index.flips
    chosen: list[int] = []
    table = 0
    while len(chosen) < 31:
        take = min(flips + 1, 31 - len(chosen))
        chosen += [table * bits + b for b in range(take)]
        table += 1
    assert index.nearest(_flip(codes[position], chosen)) == (position, 31)


def test_nothing_beyond_the_radius_is_returned(codes: np.ndarray, index: PDQIndex) -> None:
    rng = np.random.default_rng(2)
    for k in range(32, 41):
        flipped = _flip(
            codes[int(rng.integers(len(codes)))], list(rng.choice(256, k, replace=False))
        )
        assert index.nearest(flipped) is None
    random = rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()
    assert index.nearest(random) is None


def test_small_banks_are_scanned_exactly_and_bad_input_is_refused() -> None:
    codes = pdq_codes(["00" * 32, "ff" * 32])
    small = PDQIndex(codes)
    assert small.kind == "flat"
    assert small.nearest("00" * 31 + "0f") == (0, 4)
    assert small.nearest("0f" * 32) is None
    assert PDQIndex(np.zeros((0, 32), dtype=np.uint8)).nearest("00" * 32) is None
    with pytest.raises(InputError):
        pdq_codes(["abc"])
    with pytest.raises(InputError):
        PDQIndex(np.zeros((2, 16), dtype=np.uint8))
