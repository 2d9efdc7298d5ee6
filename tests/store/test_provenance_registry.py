"""The provenance registry's rows on SQLite and PostgreSQL: insert, find, stream, conflicts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from safestack.errors import InputError, RecordConflictError
from safestack.store import NewProvenanceRecord, Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as opened:
        opened.migrate()
        yield opened


def _record(number: int, **changes: object) -> NewProvenanceRecord:
    fields: dict[str, object] = {
        "id": f"img_{number:032x}",
        "account_id": "acct_1",
        "request_id": f"req_{number}",
        "model": "m" * 256,  # served model names may be this long
        "prompt_sha256": hashlib.sha256(b"a cat").hexdigest(),
        "media_type": "image/png",
        "width": 512,
        "height": 384,
        "sha256": hashlib.sha256(str(number).encode()).hexdigest(),
        "pdq": f"{number:064x}",
        "pdq_quality": 90,
        "watermark_method": "dwtDctSvd",
        "watermark_payload": f"{number + 2**40:x}",
        "manifest_label": f"urn:c2pa:{number}",
        "manifest_sha256": hashlib.sha256(b"manifest").hexdigest(),
        "signer_fingerprint": "ab" * 32,
    }
    fields.update(changes)
    return NewProvenanceRecord.model_validate(fields)


def test_records_round_trip_and_are_found_by_each_key(store: Store) -> None:
    sidecar = bytes(range(256)) * 4  # binary, with NUL bytes: bytea on PostgreSQL
    first = store.register_image(_record(1, manifest_embedded=False, sidecar_manifest=sidecar))
    second = store.register_image(_record(2))
    assert first.seq < second.seq and first.created_at <= second.created_at
    assert first.sidecar_manifest == sidecar and second.sidecar_manifest is None
    assert store.find_provenance(record_id=first.id) == first
    assert store.find_provenance(seq=second.seq) == second
    assert store.find_provenance(sha256=second.sha256) == second
    assert store.find_provenance(manifest_label="urn:c2pa:1") == first
    assert store.find_provenance(sha256="0" * 64) is None
    assert store.count_provenance() == 2
    with pytest.raises(InputError, match="exactly one"):
        store.find_provenance(record_id=first.id, seq=first.seq)


def test_index_entries_stream_in_order_after_a_position(store: Store) -> None:
    stored = [store.register_image(_record(n)) for n in range(1, 6)]
    entries = list(store.provenance_index_entries())
    assert [e.seq for e in entries] == [r.seq for r in stored]
    assert entries[0].pdq == stored[0].pdq and entries[0].watermark_payload == f"{1 + 2**40:x}"
    later = list(store.provenance_index_entries(after_seq=stored[2].seq))
    assert [e.seq for e in later] == [stored[3].seq, stored[4].seq]


def test_a_duplicate_id_is_a_conflict_and_writes_nothing(store: Store) -> None:
    store.register_image(_record(7))
    with pytest.raises(RecordConflictError, match="exists already"):
        store.register_image(_record(7, sha256="f" * 64))
    assert store.count_provenance() == 1
