from __future__ import annotations

import pytest

from safestack.classify import Exchange
from safestack.classify._inputs import as_exchanges, as_texts
from safestack.errors import InputError


def test_bytes_must_be_utf8_and_error_names_the_item() -> None:
    assert as_texts([b"caf\xc3\xa9"]) == ["café"]
    with pytest.raises(InputError, match=r"item 1: not valid UTF-8 \(byte 3"):
        as_texts(["ok", b"bad\xff"])


def test_non_strings_are_rejected_with_their_type() -> None:
    with pytest.raises(InputError, match="item 0: expected a string, got int"):
        as_texts([42])  # type: ignore[list-item]
    with pytest.raises(InputError, match="list of texts"):
        as_texts("a single string")


def test_lone_surrogates_are_replaced_not_fatal() -> None:
    (text,) = as_texts(["a\udcffb"])
    assert text == "a?b"
    text.encode("utf-8")


def test_exchange_classifiers_want_exchanges() -> None:
    with pytest.raises(InputError, match="Exchange"):
        as_exchanges(["just a prompt"])
    assert as_exchanges([Exchange("p", "r")]) == [Exchange("p", "r")]
