"""Reading hash-bank files in every supported format, and importing them into a real store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from safestack.errors import InputError
from safestack.hashing import HashFileError, read_hash_file
from safestack.store import NewHashEntry, Store

SHA = "a1" * 32
SHA2 = "b2" * 32
MD5 = "c3" * 16
PDQ = "d4" * 32
PDQ2 = "e5" * 32


def _read(tmp_path: Path, text: str, **options: object) -> list[NewHashEntry]:
    path = tmp_path / "bank.txt"
    path.write_text(text, encoding="utf-8")
    return list(read_hash_file(path, **options))  # type: ignore[arg-type]


def _pairs(entries: list[NewHashEntry]) -> list[tuple[str, str]]:
    return [(e.hash_type, e.value) for e in entries]


def test_plain_list_with_comments_blank_lines_and_lengths(tmp_path: Path) -> None:
    text = f"# exported 2024-01-01\n\n{MD5.upper()}\n   \n{SHA}\n# trailing comment\n"
    entries = _read(tmp_path, text)
    # 32 hex → md5; a bare 64 hex is stored as both sha256 and pdq (see the module docstring).
    assert _pairs(entries) == [("md5", MD5), ("sha256", SHA), ("pdq", SHA)]
    assert all(e.quality is None and e.details == {} for e in entries)


@pytest.mark.parametrize(("choice", "expected"), [("sha256", "sha256"), ("pdq", "pdq")])
def test_type_option_stores_a_bare_64_hex_once(tmp_path: Path, choice: str, expected: str) -> None:
    assert _pairs(_read(tmp_path, f"{SHA}\n{SHA2}\n", hash_type=choice)) == [
        (expected, SHA),
        (expected, SHA2),
    ]


def test_type_prefixes_as_hma_exports_them(tmp_path: Path) -> None:
    text = f"pdq {PDQ}\nPDQ,{PDQ2}\nmd5 {MD5}\nsha256\t{SHA}\nphoto_pdq {SHA2}\n"
    assert _pairs(_read(tmp_path, text)) == [
        ("pdq", PDQ),
        ("pdq", PDQ2),
        ("md5", MD5),
        ("sha256", SHA),
        ("pdq", SHA2),
    ]


def test_threatexchange_pdq_text_keeps_the_quality(tmp_path: Path) -> None:
    entries = _read(tmp_path, f"{PDQ},100,photo-1.jpg\n{PDQ2},49\n")
    assert [(e.hash_type, e.value, e.quality) for e in entries] == [
        ("pdq", PDQ, 100),
        ("pdq", PDQ2, 49),
    ]
    assert entries[0].details == {"source": "photo-1.jpg"}


def test_csv_metadata_columns_land_in_details(tmp_path: Path) -> None:
    text = (
        "hash,type,quality,case_id,label\n"
        f"{PDQ},pdq,87,case-17,known\n"
        f"{MD5},md5,,case-18,\n"
        "\n"
        f"{SHA},,,case-19,known\n"
    )
    entries = _read(tmp_path, text)
    assert _pairs(entries) == [("pdq", PDQ), ("md5", MD5), ("sha256", SHA), ("pdq", SHA)]
    assert entries[0].quality == 87 and entries[1].quality is None
    assert entries[0].details == {"case_id": "case-17", "label": "known"}
    assert entries[1].details == {"case_id": "case-18"}  # empty cells are dropped


def test_json_lines(tmp_path: Path) -> None:
    lines = [
        {"hash": PDQ, "type": "pdq", "quality": 90, "source": "te", "tags": ["a"]},
        {"signal_value": MD5, "signal_type": "md5"},
        {"hash": SHA},
    ]
    text = "# a comment\n" + "\n".join(json.dumps(line) for line in lines) + "\n"
    entries = _read(tmp_path, text)
    assert _pairs(entries) == [("pdq", PDQ), ("md5", MD5), ("sha256", SHA), ("pdq", SHA)]
    assert entries[0].quality == 90 and entries[0].details == {"source": "te", "tags": ["a"]}


def test_bad_lines_are_all_named_with_their_line_numbers(tmp_path: Path) -> None:
    text = f"{MD5}\nnot-hex\n{SHA}\nabc123\nmd5 {SHA}\n{PDQ},101\nsha512 {SHA}\n"
    with pytest.raises(HashFileError) as caught:
        _read(tmp_path, text)
    error = caught.value
    assert error.total == 5
    assert [p.split(":")[0] for p in error.problems] == [
        "line 2",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert "nothing was imported" in str(error) and "line 6" in str(error)


def test_bad_json_lines_and_a_type_that_contradicts_the_option(tmp_path: Path) -> None:
    text = (
        f'{{"hash": "{PDQ}", "type": "pdq"}}\n{{broken\n[1, 2]\n{{"hash": "{MD5}", "type": "x"}}\n'
    )
    with pytest.raises(HashFileError) as caught:
        _read(tmp_path, text)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 2", "line 3", "line 4"]
    with pytest.raises(HashFileError, match="the file says pdq, --type says sha256"):
        _read(tmp_path, f"pdq {PDQ}\n", hash_type="sha256")


def test_skip_invalid_imports_the_good_lines(tmp_path: Path) -> None:
    entries = _read(tmp_path, f"{MD5}\nzz\npdq {PDQ}\n", skip_invalid=True)
    assert _pairs(entries) == [("md5", MD5), ("pdq", PDQ)]


def test_empty_missing_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no hashes found"):
        _read(tmp_path, "# only a comment\n\n")
    with pytest.raises(InputError, match="no such file"):
        read_hash_file(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="allowed: auto, sha256, md5, pdq"):
        _read(tmp_path, f"{MD5}\n", hash_type="sha1")


# -- through the store: one transaction, idempotent ---------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store(database_url) as migrated:
        migrated.migrate()
        yield migrated


def test_a_bad_file_stores_nothing_not_even_the_new_bank(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    # Thousands of good lines first: the import has inserted batches when the bad line is read.
    good = "\n".join(f"{i:032x}" for i in range(6_000))
    path.write_text(f"{good}\nnot-a-hash\n", encoding="utf-8")
    with pytest.raises(HashFileError, match="line 6001"):
        store.import_hashes("new-bank", read_hash_file(path), actor="tester")
    assert store.list_hash_banks() == []

    existing = store.create_hash_bank(name="existing", actor="tester")
    with pytest.raises(HashFileError):
        store.import_hashes("existing", read_hash_file(path), actor="tester")
    assert store.get_hash_bank(existing.id).counts == {}


def test_import_is_idempotent_and_skip_invalid_keeps_the_good(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bank.txt"
    path.write_text(f"{MD5}\n{SHA}\nbad\npdq {PDQ}\n{MD5}\n", encoding="utf-8")

    first = store.import_hashes(
        "ncmec", read_hash_file(path, skip_invalid=True), description="test", actor="tester"
    )
    assert first.created_bank and first.bank.description == "test"
    assert first.added == {"md5": 1, "sha256": 1, "pdq": 2}
    assert first.already_present == {"md5": 1, "sha256": 0, "pdq": 0}  # the repeated line

    again = store.import_hashes("ncmec", read_hash_file(path, skip_invalid=True), actor="tester")
    assert not again.created_bank and again.bank.id == first.bank.id
    assert again.added == {"md5": 0, "sha256": 0, "pdq": 0}
    assert again.already_present == {"md5": 2, "sha256": 1, "pdq": 2}
    assert store.get_hash_bank("ncmec").counts == {"md5": 1, "sha256": 1, "pdq": 2}
