"""Provenance on a real SQLite registry, with development credentials in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from safestack.provenance import PROVENANCE_DIR_ENV, Provenance, ProvenanceConfig
from safestack.store import Store


@pytest.fixture(scope="module")
def provenance_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("provenance")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PROVENANCE_DIR_ENV, str(directory))
        yield directory


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("registry") / "registry.db"
    with Store(f"sqlite:///{path}") as opened:
        opened.migrate()
        yield opened


@pytest.fixture(scope="module")
def provenance(provenance_dir: Path, store: Store) -> Provenance:
    return Provenance.from_config(ProvenanceConfig(), store)
