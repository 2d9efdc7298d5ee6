"""Matching images against the enabled banks of a real store (SQLite file and PostgreSQL).

Bank images are synthetic but structured (see ``_images``); their edited copies must match by PDQ
within distance 31, unrelated images must not, and the matcher must follow bank changes made
through another connection and fail closed when the store fails.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from _images import brighter, cropped, distance, encode, half, scene
from PIL import Image

from loopback import free_port
from safestack.errors import StoreError
from safestack.hashing import PDQ_MATCH_DISTANCE, HashMatcher, ImageHashes, hash_bytes
from safestack.store import NewHashEntry, Store

BANK_SEEDS = range(6)
OTHER_SEEDS = range(100, 124)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as migrated:
        migrated.migrate()
        yield migrated


def _pdq_entry(hashes: ImageHashes) -> NewHashEntry:
    return NewHashEntry(hash_type="pdq", value=hashes.pdq, quality=hashes.quality)


def _bank(store: Store, name: str, hashes: list[ImageHashes]) -> str:
    return store.import_hashes(name, [_pdq_entry(h) for h in hashes], actor="tester").bank.id


@functools.cache
def _bank_and_copies() -> tuple[list[ImageHashes], list[tuple[int, str, ImageHashes]]]:
    """The bank images' hashes, and (bank index, edit, hashes) of each edited copy (computed
    once for both databases)."""
    images = [scene(seed) for seed in BANK_SEEDS]
    copies = []
    for index, image in enumerate(images):
        edits = {
            "jpeg q75": encode(image, "JPEG", quality=75),
            "resized 50 %": encode(half(image)),
            "cropped 3 % of the area": encode(cropped(image)),
            "brighter, less saturated": encode(brighter(image), "JPEG", quality=90),
        }
        copies += [(index, edit, hash_bytes(data)) for edit, data in edits.items()]
    return [hash_bytes(encode(image)) for image in images], copies


@functools.cache
def _unrelated() -> list[ImageHashes]:
    return [hash_bytes(encode(scene(seed))) for seed in OTHER_SEEDS]


def test_edited_copies_match_by_pdq_and_unrelated_images_do_not(store: Store) -> None:
    banked, copies = _bank_and_copies()
    assert all(h.quality >= 50 for h in banked)
    _bank(store, "known", banked)
    matcher = HashMatcher(store)

    for index, edit, copy in copies:
        original = banked[index]
        found = matcher.match(copy)
        assert found is not None, (index, edit)
        assert (found.bank, found.hash_type, found.value) == ("known", "pdq", original.pdq)
        assert found.distance == distance(copy.pdq, original.pdq) <= PDQ_MATCH_DISTANCE

    for other in _unrelated():
        assert other.quality >= 50
        assert matcher.match(other) is None
        assert min(distance(other.pdq, h.pdq) for h in banked) > PDQ_MATCH_DISTANCE


def test_exact_matches_by_sha256_and_md5(store: Store) -> None:
    by_sha, by_md5 = encode(scene(10)), encode(scene(11))
    first, second = hash_bytes(by_sha), hash_bytes(by_md5)
    store.import_hashes(
        "exact",
        [
            NewHashEntry(hash_type="sha256", value=first.sha256),
            NewHashEntry(hash_type="md5", value=second.md5),
        ],
        actor="tester",
    )
    matcher = HashMatcher(store)
    found = matcher.match(first)
    assert found is not None and (found.hash_type, found.distance) == ("sha256", None)
    found = matcher.match(second)
    assert found is not None and (found.hash_type, found.value) == ("md5", second.md5)
    # Other bytes of the same pixels are not an exact match (and nothing is banked by PDQ).
    assert matcher.match(hash_bytes(encode(scene(10), "JPEG", quality=95))) is None


def test_a_low_quality_image_matches_exactly_but_never_perceptually(store: Store) -> None:
    data = encode(Image.new("RGB", (96, 96), (90, 90, 90)))
    flat = hash_bytes(data)
    assert flat.quality < 50
    store.import_hashes(
        "flat",
        [_pdq_entry(flat), NewHashEntry(hash_type="sha256", value=flat.sha256)],
        actor="tester",
    )
    matcher = HashMatcher(store)
    found = matcher.match(flat)
    assert found is not None and found.hash_type == "sha256"
    # The same pixels in other bytes: the very same PDQ, but a PDQ of quality < 50 says nothing.
    other = hash_bytes(encode(Image.new("RGB", (96, 96), (90, 90, 90)), compress_level=0))
    assert other.sha256 != flat.sha256 and other.pdq == flat.pdq
    assert matcher.match(other) is None


def test_disabling_a_bank_stops_its_matches_and_enabling_restores_them(store: Store) -> None:
    original = hash_bytes(encode(scene(1)))
    bank_id = _bank(store, "toggle", [original])
    copy = hash_bytes(encode(scene(1), "JPEG", quality=75))
    matcher = HashMatcher(store, check_every_s=3600)  # only refresh() reloads
    assert matcher.match(copy) is not None

    store.set_hash_bank_enabled(bank_id, False, actor="tester")
    matcher.refresh()
    assert matcher.match(copy) is None
    store.set_hash_bank_enabled(bank_id, True, actor="tester")
    matcher.refresh()
    found = matcher.match(copy)
    assert found is not None and found.bank_id == bank_id


def test_an_import_through_another_store_is_seen_after_check_every_s(database_url: str) -> None:
    banked = hash_bytes(encode(scene(2)))
    with Store(database_url) as serving, Store(database_url) as admin:
        serving.migrate()
        matcher = HashMatcher(serving, check_every_s=0)
        assert matcher.match(banked) is None
        _bank(admin, "later", [banked])
        found = matcher.match(banked)
        assert found is not None and (found.bank, found.distance) == ("later", 0)


def test_a_second_frame_of_an_animation_matches(store: Store) -> None:
    harmless, banned = (scene(seed).quantize(256).convert("RGB") for seed in (20, 21))
    _bank(store, "frames", [hash_bytes(encode(banned))])
    gif = encode(harmless, "GIF", save_all=True, append_images=[banned], duration=80, loop=0)
    hashes = hash_bytes(gif)
    assert len(hashes.frame_pdq) == 2
    found = HashMatcher(store).match(hashes)
    assert found is not None and found.bank == "frames" and found.distance == 0


def test_a_store_that_is_down_makes_match_raise() -> None:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/safestack"
    with Store(url, connect_timeout_s=1) as down:
        matcher = HashMatcher(down)
        with pytest.raises(StoreError):
            matcher.match(hash_bytes(encode(scene(3))))


def test_a_store_that_breaks_after_loading_makes_match_raise(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    banked = hash_bytes(encode(scene(4)))
    with Store(f"sqlite:///{path}") as store:
        store.migrate()
        _bank(store, "known", [banked])
        matcher = HashMatcher(store, check_every_s=0)
        assert matcher.match(banked) is not None
        store.close()
        path.write_bytes(b"this is no longer a database" * 512)
        with pytest.raises(StoreError):  # not the stale snapshot's answer, and never None
            matcher.match(banked)
