"""The written policy as vectors: every clause and every labelled example, embedded once.

The nearest-clause monitor reasons over this bank. Each clause of the policy (for one audience)
is represented by its own text and by the policy's labelled examples that illustrate it: a
disallowed example belongs to the nearest *disallowed* clause of its category, an allowed example
to the nearest *allowed* clause of its category. An example therefore always supports a rule
that a reviewer can read, and a verdict that rests on an example still cites a clause.

Built once per (policy, audience, embedder) and kept on the monitor: the per-request cost of the
monitor is then a matrix product against a few hundred vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from safestack.classify._embedding import Embedder
from safestack.policy import Audience, Clause, Policy

__all__ = ["ClauseBank", "build_bank", "judge_covered_texts"]

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


@lru_cache(maxsize=1)
def judge_covered_texts() -> frozenset[str]:
    """Normalised texts of the rules the packaged output judge was trained against.

    The embedded output judge learnt "harmful" from data mapped onto the packaged default
    policy's adult rules. A clause with the same text is covered by that learnt notion; any other
    forbidding clause — the under-18 rules, a team's own rules — is one no trained head has seen,
    and only the similarity reasoning of the monitor can apply it.
    """
    from safestack.policy import default_policy

    policy = default_policy()
    return frozenset(
        _norm(c.text) for c in policy.clauses(Audience.ADULT) if c.kind == "disallowed"
    )


@dataclass(frozen=True)
class ClauseBank:
    """Embedded clauses and examples of one policy for one audience.

    ``vectors`` are sorted by owning clause: clause ``k`` owns rows ``starts[k]`` up to
    ``starts[k + 1]``, its own text first, so ``np.maximum.reduceat(scores, starts, axis=1)``
    gives the best match per clause. ``texts[i]`` is what row ``i`` embeds, ``from_example[i]``
    whether it is a labelled example rather than the clause text.
    """

    clauses: tuple[Clause, ...]
    vectors: NDArray[np.float32]
    starts: NDArray[np.intp]
    texts: tuple[str, ...]
    from_example: tuple[bool, ...]
    categories: tuple[str, ...]
    category_of: NDArray[np.intp]  # clause -> index into categories
    forbids: NDArray[np.bool_]  # clause forbids (disallowed or under-18)
    unseen: NDArray[np.bool_]  # forbidding clause the trained judge has not learnt

    def owner(self, row: int) -> int:
        """The clause that vector ``row`` belongs to."""
        return int(np.searchsorted(self.starts, row, side="right") - 1)

    def best_row(self, row_scores: NDArray[np.float32], clause: int) -> int:
        """The row of ``clause`` (its text or one of its examples) that scored highest."""
        start = int(self.starts[clause])
        stop = int(self.starts[clause + 1]) if clause + 1 < len(self.starts) else len(self.texts)
        return start + int(np.argmax(row_scores[start:stop]))


def build_bank(policy: Policy, audience: Audience, embedder: Embedder) -> ClauseBank:
    """Embed every clause of ``policy`` for ``audience`` and attach the labelled examples."""
    clauses = policy.clauses(audience)
    clause_vecs = embedder.embed([c.text for c in clauses])
    owned: list[list[str]] = [[c.text] for c in clauses]
    for category in policy.categories:
        for kind, examples in (
            ("disallowed", category.examples.disallowed),
            ("allowed", category.examples.allowed),
        ):
            targets = [
                i for i, c in enumerate(clauses) if c.category == category.id and c.kind == kind
            ]
            if not examples or not targets:
                continue  # allowed examples of a category without allowed clauses: no rule to own
            example_vecs = embedder.embed(list(examples))
            nearest = np.argmax(example_vecs @ clause_vecs[targets].T, axis=1)
            for text, j in zip(examples, nearest, strict=True):
                owned[targets[int(j)]].append(text)

    texts: list[str] = []
    from_example: list[bool] = []
    starts: list[int] = []
    for own in owned:
        starts.append(len(texts))
        texts += own
        from_example += [False] + [True] * (len(own) - 1)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)

    categories = tuple(policy.category_ids)
    covered = judge_covered_texts()
    return ClauseBank(
        clauses=tuple(clauses),
        vectors=vectors,
        starts=np.asarray(starts, dtype=np.intp),
        texts=tuple(texts),
        from_example=tuple(from_example),
        categories=categories,
        category_of=np.asarray([categories.index(c.category) for c in clauses], dtype=np.intp),
        forbids=np.asarray([c.forbids for c in clauses], dtype=np.bool_),
        unseen=np.asarray([c.forbids and _norm(c.text) not in covered for c in clauses]),
    )
