"""Provenance on a real SQLite registry, with development credentials in a temporary folder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
from PIL import Image

from safestack.provenance import PROVENANCE_DIR_ENV, Provenance, ProvenanceConfig
from safestack.store import Store


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(name: str = "astronaut") -> np.ndarray:
    """A public-domain photograph shipped with scikit-image (skimage.data)."""
    return np.asarray(getattr(skimage.data, name)())


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
