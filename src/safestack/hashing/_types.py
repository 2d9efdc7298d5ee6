"""The nouns of known-bad media matching: the hashes of one image, a match, an action."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = ["PDQ_MATCH_DISTANCE", "PDQ_MIN_QUALITY", "Action", "HashType", "ImageHashes", "Match"]

HashType = Literal["sha256", "md5", "pdq"]

#: PDQ's published operating point: distance ≤ 31 of 256 bits is a match.
PDQ_MATCH_DISTANCE = 31
#: Below this PDQ quality (flat or tiny images) perceptual matching is unreliable; such images
#: are matched by their exact hashes only.
PDQ_MIN_QUALITY = 50


class Action(StrEnum):
    """What a match against a bank does; each bank enables any of them."""

    REJECT = "reject"  # refuse the request
    REPORT = "report"  # file a report (and deliver it to the configured receiver)
    BAN = "ban"  # suspend the account


@dataclass(frozen=True)
class ImageHashes:
    """The hashes of one image: exact (of the bytes as received) and perceptual (of the pixels).

    ``pdq`` is 64 lower-case hex digits; ``quality`` is PDQ's 0–100 quality score. An animated
    image's ``frame_pdq`` holds one (hash, quality) per frame, so a known-bad frame inside an
    animation matches too; ``pdq`` / ``quality`` are those of the first frame.
    """

    sha256: str
    md5: str
    pdq: str
    quality: int
    frame_pdq: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Match:
    """An image matched a bank entry. ``distance`` is the PDQ Hamming distance, None if exact."""

    bank: str
    bank_id: str
    hash_type: HashType
    value: str
    distance: int | None
    actions: frozenset[Action]
    details: dict[str, Any] = field(default_factory=dict)
