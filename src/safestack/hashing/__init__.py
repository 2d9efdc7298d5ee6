"""Known-bad media: exact and perceptual hashes, banks, matching at scale, and what a match does.

* :func:`hash_image` — SHA-256 and MD5 of the bytes, PDQ (and its quality) of every frame.
* Banks live in the store (:meth:`~safestack.store.Store.import_hashes`); files in the formats of
  :func:`read_hash_file` (plain lists, CSV, JSON lines, ThreatExchange / HMA PDQ text).
* :class:`HashMatcher` — exact lookups, then PDQ within distance 31 through :class:`PDQIndex`
  (exact multi-index hashing from 200,000 hashes on), over the enabled banks; fails closed.
* :class:`Enforcer` — reject / report / ban per bank, in one transaction with the audit entries;
  :class:`ReportDeliverer` sends reports to a signed webhook, retried, never lost.

Nothing here imports the store at run time (the store is passed in), so the safety stack can use
the hashing nouns without depending on storage.
"""

from safestack.hashing._enforce import Enforcement, Enforcer
from safestack.hashing._hashes import (
    bits_from_hex,
    hash_bytes,
    hash_image,
    hex_from_bits,
    pdq_dihedral_of,
    pdq_of,
)
from safestack.hashing._import import HashFileError, TypeChoice, read_hash_file, read_hash_lines
from safestack.hashing._index import PDQIndex, pdq_codes
from safestack.hashing._matcher import HashMatcher
from safestack.hashing._reports import (
    ReportDeliverer,
    ReportReceiverConfig,
    cybertipline_report,
    verify_signature,
)
from safestack.hashing._types import (
    PDQ_MATCH_DISTANCE,
    PDQ_MIN_QUALITY,
    Action,
    HashType,
    ImageHashes,
    Match,
)

__all__ = [
    "PDQ_MATCH_DISTANCE",
    "PDQ_MIN_QUALITY",
    "Action",
    "Enforcement",
    "Enforcer",
    "HashFileError",
    "HashMatcher",
    "HashType",
    "ImageHashes",
    "Match",
    "PDQIndex",
    "ReportDeliverer",
    "ReportReceiverConfig",
    "TypeChoice",
    "bits_from_hex",
    "cybertipline_report",
    "hash_bytes",
    "hash_image",
    "hex_from_bits",
    "pdq_codes",
    "pdq_dihedral_of",
    "pdq_of",
    "read_hash_file",
    "read_hash_lines",
    "verify_signature",
]
