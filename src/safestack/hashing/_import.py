"""Reading hash-bank files: plain lists, CSV, JSON lines, and ThreatExchange / HMA PDQ text.

Formats (detected from the first non-blank, non-comment line):

* **one hash per line** — ``<hex>``, or ``<type> <hex>`` / ``<type>,<hex>`` with type ``pdq``,
  ``md5`` or ``sha256`` (the signal-type prefix of HMA exports);
* **PDQ text** as the ThreatExchange PDQ hashers print it — ``<64 hex>,<quality>[,<anything>]``
  — which is read as PDQ with its quality;
* **CSV** with a header naming a ``hash`` column (also ``signal_value``); optional ``type`` /
  ``signal_type`` and ``quality`` columns; every other column becomes the entry's metadata;
* **JSON lines** — one object per line with ``hash`` (or ``signal_value``), optional ``type`` and
  ``quality``, the rest as metadata.

The type comes from the file when it says (a type column or prefix, PDQ text), else from the
length: 32 hex digits are MD5. 64 hex digits are SHA-256 *or* PDQ and nothing in a bare list
tells which, so in ``auto`` mode such a hash is stored as both: it then matches a file with that
SHA-256 exactly, and an image whose PDQ lies within the match distance. A random 256-bit value
falls within distance 31 of an unrelated PDQ with probability about 2^-150, so reading a SHA-256
as a PDQ costs nothing in false matches. ``--type`` settles it when the list's origin is known.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from safestack.errors import InputError

if TYPE_CHECKING:
    from safestack.store import NewHashEntry

__all__ = ["HashFileError", "TypeChoice", "read_hash_file", "read_hash_lines"]

TypeChoice = Literal["auto", "sha256", "md5", "pdq"]

_HEX = re.compile(r"[0-9a-fA-F]+")
_TYPES = {"sha256": "sha256", "md5": "md5", "pdq": "pdq", "photo_pdq": "pdq", "sha-256": "sha256"}
_HASH_COLUMNS = ("hash", "signal_value", "value")
_TYPE_COLUMNS = ("type", "signal_type", "hash_type")
_MAX_ERRORS = 20


class HashFileError(InputError):
    """A hash file has bad lines; ``problems`` lists them as ``line N: reason``."""

    def __init__(self, source: str, problems: list[str], total: int) -> None:
        more = f" (and {total - len(problems)} more)" if total > len(problems) else ""
        super().__init__(
            f"{source}: {total} bad line(s){more}; nothing was imported:\n  "
            + "\n  ".join(problems)
        )
        self.problems = problems
        self.total = total


def read_hash_file(
    path: str | Path, *, hash_type: TypeChoice = "auto", skip_invalid: bool = False
) -> Iterator[NewHashEntry]:
    """The entries of a bank file; :class:`HashFileError` names every bad line (at the end).

    Unless ``skip_invalid``, a bad line anywhere makes the iteration raise after the last entry,
    so an import that consumes it in one transaction stores nothing.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it as UTF-8 text: {exc}") from None
    return read_hash_lines(text, source=str(path), hash_type=hash_type, skip_invalid=skip_invalid)


def read_hash_lines(
    text: str,
    *,
    source: str = "<hashes>",
    hash_type: TypeChoice = "auto",
    skip_invalid: bool = False,
) -> Iterator[NewHashEntry]:
    """Like :func:`read_hash_file`, for text already in memory.

    Entries stream out as they are read (an import of millions of hashes holds one batch in
    memory); bad lines are collected and raised together at the end, after the last entry, so
    an import that consumes this inside one transaction stores nothing.
    """
    if hash_type not in ("auto", "sha256", "md5", "pdq"):
        raise InputError(f"unknown hash type {hash_type!r}; allowed: auto, sha256, md5, pdq")
    return _stream(text, source, hash_type, skip_invalid)


def _stream(
    text: str, source: str, hash_type: TypeChoice, skip_invalid: bool
) -> Iterator[NewHashEntry]:
    problems: list[str] = []
    total_bad = 0
    found = 0
    for line_no, record in _records(text):
        try:
            entries = _entries(record, hash_type)
        except ValueError as exc:
            total_bad += 1
            if len(problems) < _MAX_ERRORS:
                problems.append(f"line {line_no}: {exc}")
            continue
        found += len(entries)
        yield from entries
    if total_bad and not skip_invalid:
        raise HashFileError(source, problems, total_bad)
    if not found and not total_bad:
        raise InputError(f"{source}: no hashes found")


def _records(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, {"hash", "type"?, "quality"?, "details"}) for every data line."""
    lines = text.splitlines()
    first = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        None,
    )
    if first is None:
        return
    head = lines[first].strip()
    if head.startswith("{"):
        yield from _json_lines(lines)
        return
    columns = [c.strip().lower() for c in next(csv.reader([head]))]
    if any(c in _HASH_COLUMNS for c in columns):
        yield from _csv(lines, first)
        return
    for index, raw in enumerate(lines):
        line = raw.strip()
        if line and not line.startswith("#"):
            try:
                record = _plain(line)
            except ValueError as exc:  # a bad line is reported with the others, at the end
                record = {"error": str(exc)}
            yield index + 1, record


def _plain(line: str) -> dict[str, Any]:
    parts = [p for p in re.split(r"[,\s]+", line) if p]
    if len(parts) >= 2 and parts[0].lower() in _TYPES:  # "pdq <hex>", "md5,<hex>"
        return {"hash": parts[1], "type": _TYPES[parts[0].lower()], "details": {}}
    if len(parts) >= 2 and len(parts[0]) == 64 and parts[1].isdigit():  # PDQ text
        details = {"source": ",".join(parts[2:])} if len(parts) > 2 else {}
        return {"hash": parts[0], "type": "pdq", "quality": parts[1], "details": details}
    if len(parts) != 1:
        raise ValueError(f"expected one hash, got {line[:80]!r}")
    return {"hash": parts[0], "details": {}}


def _csv(lines: list[str], first: int) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO("\n".join(lines[first:])))
    fields = {name.strip().lower(): name for name in reader.fieldnames or ()}
    hash_key = next(fields[c] for c in _HASH_COLUMNS if c in fields)
    type_key = next((fields[c] for c in _TYPE_COLUMNS if c in fields), None)
    quality_key = fields.get("quality")
    for row in reader:
        line_no = first + reader.line_num
        value = (row.get(hash_key) or "").strip()
        if not value and not any((v or "").strip() for v in row.values()):
            continue
        known = {hash_key, type_key, quality_key}
        details = {k: v for k, v in row.items() if k not in known and k is not None and v}
        record: dict[str, Any] = {"hash": value, "details": details}
        if type_key and (row.get(type_key) or "").strip():
            record["type"] = _type_name(row[type_key])
        if quality_key and (row.get(quality_key) or "").strip():
            record["quality"] = row[quality_key]
        yield line_no, record


def _json_lines(lines: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield index + 1, {"error": f"not JSON: {exc}"}
            continue
        if not isinstance(obj, dict):
            yield index + 1, {"error": "expected a JSON object"}
            continue
        key = next((k for k in _HASH_COLUMNS if k in obj), None)
        record: dict[str, Any] = {"hash": obj.get(key) if key else None}
        type_key = next((k for k in _TYPE_COLUMNS if k in obj), None)
        if type_key is not None:
            record["type"] = _type_name(str(obj[type_key]))
        if "quality" in obj:
            record["quality"] = obj["quality"]
        skip = {key, type_key, "quality"}
        record["details"] = {k: v for k, v in obj.items() if k not in skip}
        yield index + 1, record


def _type_name(value: str) -> str:
    name = value.strip().lower()
    if name not in _TYPES:
        return f"unknown:{value.strip()}"
    return _TYPES[name]


def _entries(record: dict[str, Any], choice: TypeChoice) -> list[NewHashEntry]:
    # The store's record type, imported on first use: importing safestack.hashing (as the
    # safety stack does) must not load the store.
    from safestack.store import NewHashEntry

    if "error" in record:
        raise ValueError(record["error"])
    value = record.get("hash")
    if not isinstance(value, str) or not _HEX.fullmatch(value.strip()):
        raise ValueError(f"not a hex hash: {str(value)[:80]!r}")
    value = value.strip().lower()
    declared = record.get("type")
    if isinstance(declared, str) and declared.startswith("unknown:"):
        raise ValueError(f"unknown hash type {declared[8:]!r}; allowed: sha256, md5, pdq")
    if choice != "auto":
        if declared is not None and declared != choice:
            raise ValueError(f"the file says {declared}, --type says {choice}")
        types = [choice]
    elif declared is not None:
        types = [declared]
    elif len(value) == 32:
        types = ["md5"]
    elif len(value) == 64:
        types = ["sha256", "pdq"]
    else:
        raise ValueError(f"{len(value)} hex digits: MD5 has 32, SHA-256 and PDQ 64")
    expected = {"md5": 32, "sha256": 64, "pdq": 64}
    quality = _quality(record.get("quality"))
    out = []
    for hash_type in types:
        if len(value) != expected[hash_type]:
            raise ValueError(f"a {hash_type} hash has {expected[hash_type]} hex digits")
        out.append(
            NewHashEntry(
                hash_type=hash_type,
                value=value,
                quality=quality if hash_type == "pdq" else None,
                details=record.get("details") or {},
            )
        )
    return out


def _quality(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        quality = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"quality must be an integer 0–100, got {value!r}") from None
    if not 0 <= quality <= 100:
        raise ValueError(f"quality must be 0–100, got {quality}")
    return quality
