"""Shared fixtures. Tests that need the public datasets fail loudly in CI if they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    from safestack.datasets_dir import find_datasets_dir
    from safestack.errors import DataError

    try:
        return find_datasets_dir()
    except DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have ../shared/datasets: {exc}")
        pytest.skip(f"public datasets not found: {exc}")
