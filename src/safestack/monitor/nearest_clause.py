"""The offline policy monitor: reasons over the written policy with the packaged embedder.

No generative judge runs offline here (see ``MODELS.md``), so this monitor does what such a judge
is for — name the rule an answer breaks, and apply rules no trained head has seen — with three
pieces of evidence that do run offline:

1. **Did the model comply?** The refusal detector's head (the copy packaged inside the output
   judge's artefact) reads the start of the response. A confident refusal (``P(refusal) >=
   refusal_gate``) never violates the policy.
2. **Is the response harmful?** The embedded output judge's ``P(harm)`` of the start of the
   response, where the judge was trained to look (the stack's output layer already runs the
   judge over every window; on XSTest's held-out completions the maximum over windows only
   added false positives). This is the trained notion of harm: the default policy's adult rules.
3. **Which rule?** The request and the response are compared with every clause of the policy
   and the labelled examples that illustrate it (:mod:`safestack.monitor._bank`).

Two paths turn this into per-category scores, flagged by the policy's thresholds for the audience:

* *Harm path*: ``P(harm)`` goes to the category whose forbidding clauses the exchange is nearest
  to (nudged by the output judge's category head where the policy uses its category ids); close
  runners-up get a share, as in the embedded classifiers.
* *Rule path*: for forbidding clauses the trained judge has not learnt — the under-18 rules, and
  any clause of a team's own policy that the default policy does not contain — a response that
  complies and matches the clause closely (similarity at least ``rule_similarity`` and at least
  ``rule_margin`` above the nearest *allowed* clause) scores high on its own. Its constants were
  set on data other than the evaluation set (XSTest completions and everyday answers, where it
  fires on 0.3 %; see ``CARD.md``).

Every flagged verdict cites a forbidding clause of its top flagged category and says, in one
sentence, which evidence decided: the probabilities, the similarity, the nearest example and the
nearest allowed rule. What embeddings cannot do is read: a definition ("What is fraud?") is about
as close to a rule as an instruction to commit it, which is why similarity alone never flags a
rule the trained judge covers. ``CARD.md`` has the measured numbers and the limits.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from safestack.classify._embedding import Embedder, default_embedder, windows
from safestack.classify._inputs import as_exchanges
from safestack.classify._policy_bound import PolicyBound
from safestack.classify._protocol import ClassifierInput, Exchange, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.embedded import REFUSAL_LABELS, EmbeddedOutputClassifier
from safestack.errors import ClassifierError
from safestack.monitor._bank import ClauseBank, build_bank
from safestack.policy import Audience, Policy

__all__ = [
    "NEAREST_CLAUSE_VERSION",
    "NearestClauseMonitor",
    "NearestClauseOptions",
    "rule_scores",
]

#: Bumped whenever the reasoning or its default constants change: verdicts in old logs were
#: produced by the old rules, and the spec must say so.
NEAREST_CLAUSE_VERSION = "1"

_REFUSAL = REFUSAL_LABELS.index("refusal")
_QUOTE = 90
#: Added to the category head's probabilities before the log: a confident head can move a
#: category by at most head_weight * log(1 / 0.01) ≈ 0.46 similarity units at the default weight.
_HEAD_FLOOR = 0.01
#: Serialises building clause banks (threads of the stack may ask for one at once); a module
#: lock rather than one per monitor keeps monitors picklable.
_BANK_LOCK = threading.Lock()


@dataclass(frozen=True)
class NearestClauseOptions:
    """The monitor's constants, in one place so a run can log and vary them.

    Similarities are cosine similarities of all-MiniLM-L6-v2 embeddings. The defaults were chosen
    on XSTest completions, everyday answers and the prompt classifier's held-out split, never on
    the JailbreakBench rows the monitor is measured on (``bench/monitor_quality.py`` prints the
    measurements behind them into ``CARD.md``).
    """

    #: A response with P(refusal) at or above this is a refusal and never violates the policy.
    #: On XSTest's held-out prompts every response above 0.9 was a full or partial refusal.
    refusal_gate: float = 0.9
    #: The rule path only reads responses that mostly comply: P(refusal) below this.
    rule_compliance: float = 0.5
    #: Rule path: the exchange must reach this similarity to the clause (text or example) ...
    rule_similarity: float = 0.45
    #: ... and beat the nearest allowed clause of the policy by this much.
    rule_margin: float = 0.10
    #: Softness of the rule path's score around its boundary (similarity units); the score is
    #: 0.5 exactly on the boundary, so a policy threshold below 0.5 moves the boundary slightly.
    rule_temperature: float = 0.02
    #: Weight of the response (vs. the request) in an exchange's similarity to a clause.
    response_weight: float = 0.5
    #: Weight of the output judge's category head in choosing the category (log-probability
    #: units added to similarity); 0 uses similarity alone. 0.1 picked the labelled category
    #: for 90 % of held-out unsafe requests, similarity alone for 34 %.
    head_weight: float = 0.1
    #: How much of P(harm) a runner-up category gets: exp(-gap / temperature).
    attribution_temperature: float = 0.05

    def check(self) -> None:
        """Raise :class:`ClassifierError` naming the first option out of range."""
        unit = ("refusal_gate", "rule_compliance", "response_weight")
        for name in unit:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ClassifierError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("rule_temperature", "attribution_temperature"):
            value = getattr(self, name)
            if not value > 0.0:
                raise ClassifierError(f"{name} must be > 0, got {value!r}")
        if self.head_weight < 0.0:
            raise ClassifierError(f"head_weight must be >= 0, got {self.head_weight!r}")
        for name in ("rule_similarity", "rule_margin"):
            value = getattr(self, name)
            if not -1.0 <= value <= 2.0:
                raise ClassifierError(f"{name} must be in [-1, 2], got {value!r}")


@dataclass(frozen=True)
class _Evidence:
    """What the monitor found about one exchange (arrays are over the bank)."""

    p_harm: float
    p_refusal: float
    row_sim: NDArray[np.float32]  # per bank row (clause text or example)
    clause_sim: NDArray[np.float32]  # per clause: best of its rows
    share: NDArray[np.float32]  # per category: its share of P(harm), 1 for the nearest
    harm: NDArray[np.float32]  # per category: harm path
    rule: NDArray[np.float32]  # per clause: rule path (0 for clauses it does not cover)
    scores: NDArray[np.float32]  # per category: what is thresholded


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…") + '"'


def _sigmoid(x: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))).astype(np.float32)
    return out


def rule_scores(
    bank: ClauseBank,
    clause_sim: NDArray[np.float32],
    p_refusal: NDArray[np.float32],
    options: NearestClauseOptions,
) -> NDArray[np.float32]:
    """The rule path, per exchange and clause: how clearly a complying response matches a rule
    no trained head knows (0 for the clauses the trained judge covers and for refusals).

    The score is 0.5 where the exchange's similarity to the clause is exactly
    ``rule_similarity`` or exactly ``rule_margin`` above the nearest allowed clause, whichever
    binds, and moves to 0 or 1 within a few ``rule_temperature`` of it.
    """
    rule = np.zeros_like(clause_sim)
    if not bank.unseen.any():
        return rule
    allowed = ~bank.forbids
    best_allowed = (
        clause_sim[:, allowed].max(axis=1)
        if allowed.any()
        else np.full(len(clause_sim), -1.0, dtype=np.float32)
    )
    sim = clause_sim[:, bank.unseen]
    margin = np.minimum(
        sim - options.rule_similarity, sim - best_allowed[:, None] - options.rule_margin
    )
    rule[:, bank.unseen] = _sigmoid(margin / options.rule_temperature)
    rule[p_refusal >= options.rule_compliance] = 0.0
    return rule


@register_classifier("nearest-clause-monitor")
class NearestClauseMonitor(PolicyBound):
    """Judges a response against the written policy and cites the clause, offline.

    ``classify`` takes :class:`~safestack.classify.Exchange` items. Verdicts carry a score per
    policy category (flagged by the policy's thresholds for ``audience``), ``clause`` — the id
    of a forbidding clause of the top flagged category, for every flagged verdict — a one-sentence
    ``rationale``, and ``label``: ``"harm"`` or ``"rule"`` (which path flagged), ``"refusal"``
    (a refusal, never flagged) or ``"safe"``.

    Follows scikit-learn's contract: the constructor stores parameters; the output judge, the
    embedding model and the clause bank are loaded on first use (or by :meth:`warm_up`).
    ``judge`` replaces the packaged output judge (e.g. one with retrained heads); its embedder
    and ``embedder`` must then agree.
    """

    registry_name: ClassVar[str] = "nearest-clause-monitor"
    input_kind: ClassVar[InputKind] = "exchange"

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        audience: Audience | str = Audience.ADULT,
        embedder: Embedder | None = None,
        judge: EmbeddedOutputClassifier | None = None,
        options: NearestClauseOptions | None = None,
    ) -> None:
        self.policy = policy
        self.audience = audience
        self.embedder = embedder
        self.judge = judge
        self.options = options or NearestClauseOptions()
        self.judge_: EmbeddedOutputClassifier | None = None
        self.bank_: ClauseBank | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def _judge(self) -> EmbeddedOutputClassifier:
        if self.judge_ is None:
            if self.judge is not None:
                if (
                    self.embedder is not None
                    and self.judge.embedder is not None
                    and self.judge.embedder is not self.embedder
                ):
                    raise ClassifierError(
                        "the monitor's embedder and its judge's embedder differ; pass one of them"
                    )
                self.judge_ = self.judge
            else:
                self.judge_ = EmbeddedOutputClassifier(
                    policy=self.policy, audience=self.audience, embedder=self.embedder
                )
        return self.judge_

    @property
    def _embedder(self) -> Embedder:
        if self.embedder is not None:
            return self.embedder
        judge = self._judge
        return judge.embedder if judge.embedder is not None else default_embedder()

    @property
    def bank(self) -> ClauseBank:
        """The embedded clauses and examples of the policy for this audience (built once)."""
        if self.bank_ is None:
            with _BANK_LOCK:
                if self.bank_ is None:
                    self.bank_ = build_bank(self._policy, self._audience, self._embedder)
        return self.bank_

    @property
    def spec(self) -> ClassifierSpec:
        judge = self._judge
        return ClassifierSpec(
            name=self.registry_name,
            version=NEAREST_CLAUSE_VERSION,
            artifact_sha256=judge.bundle.sha256,
            args={
                "audience": self._audience.value,
                "embedder": self._embedder.name,
                "policy": f"{self._policy.name}@{self._policy.version}",
                "judge": f"{judge.registry_name}@{judge.spec.version}",
                "options": asdict(self.options),
            },
        )

    def warm_up(self) -> None:
        """Load the judge and the embedding model and build the clause bank, so that the first
        real request does not pay for them (the safety stack calls this before timing layers)."""
        self._judge.warm_up()
        self.bank  # noqa: B018  (embeds the policy's clauses and examples)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(audience={str(self.audience)!r})"

    # -- classify ----------------------------------------------------------------------------

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        exchanges = as_exchanges(items)
        if not exchanges:
            return []
        self.options.check()
        spec = self.spec
        thresholds = self._policy.thresholds(self._audience)
        live = [i for i, e in enumerate(exchanges) if e.response.strip()]
        verdicts: list[Verdict | None] = [None] * len(exchanges)
        for i, evidence in zip(live, self._evidence([exchanges[i] for i in live]), strict=True):
            verdicts[i] = self._verdict(evidence, thresholds, spec)
        empty = Verdict(
            flagged=False,
            scores={c: 0.0 for c in self._policy.category_ids},
            label="safe",
            rationale="The response is empty: it cannot violate the policy.",
            spec=spec,
        )
        return [v if v is not None else empty for v in verdicts]

    def _evidence(self, exchanges: list[Exchange]) -> list[_Evidence]:
        if not exchanges:
            return []
        opts, bank, judge = self.options, self.bank, self._judge
        embedder = self._embedder
        dim = embedder.dim

        # One row per response window; the judge's features hold the window's embedding, the
        # request's, and the refusal detector's probabilities (see EmbeddedOutputClassifier).
        flat: list[Exchange] = []
        starts: list[int] = []
        for e in exchanges:
            starts.append(len(flat))
            flat += [Exchange(e.prompt, w) for w in windows(e.response)]
        x = judge.features(flat)
        first = np.asarray(starts, dtype=np.intp)
        p_harm = judge.predict_proba(exchanges, features=x[first])
        p_refusal = x[first, 2 * dim + _REFUSAL]

        # The latest request is at the end of a long prompt (a conversation is joined in order).
        prompt_vecs = x[first, dim : 2 * dim]
        tails = [windows(e.prompt)[-1] for e in exchanges]
        long = [i for i, e in enumerate(exchanges) if len(windows(e.prompt)) > 1]
        if long:
            prompt_vecs = prompt_vecs.copy()
            prompt_vecs[long] = embedder.embed([tails[i] for i in long])

        w = opts.response_weight
        row_sim = w * np.maximum.reduceat(x[:, :dim] @ bank.vectors.T, first, axis=0) + (
            1.0 - w
        ) * (prompt_vecs @ bank.vectors.T)
        clause_sim = np.maximum.reduceat(row_sim, bank.starts, axis=1)

        share = self._attribution(bank, clause_sim, x[first, :dim], prompt_vecs)
        harm = (p_harm[:, None] * share).astype(np.float32)
        rule = rule_scores(bank, clause_sim, p_refusal, opts)
        ncat = len(bank.categories)
        rule_by_category = np.zeros((len(exchanges), ncat), dtype=np.float32)
        for k in np.flatnonzero(bank.unseen):
            c = bank.category_of[k]
            rule_by_category[:, c] = np.maximum(rule_by_category[:, c], rule[:, k])
        scores = np.maximum(harm, rule_by_category)
        scores[p_refusal >= opts.refusal_gate] = 0.0
        return [
            _Evidence(
                p_harm=float(p_harm[i]),
                p_refusal=float(p_refusal[i]),
                row_sim=row_sim[i],
                clause_sim=clause_sim[i],
                share=share[i],
                harm=harm[i],
                rule=rule[i],
                scores=scores[i],
            )
            for i in range(len(exchanges))
        ]

    def _attribution(
        self,
        bank: ClauseBank,
        clause_sim: NDArray[np.float32],
        response_vecs: NDArray[np.float32],
        prompt_vecs: NDArray[np.float32],
    ) -> NDArray[np.float32]:
        """Each category's share of P(harm): 1 for the category whose forbidding rules the
        exchange is nearest to, exp(-gap / attribution_temperature) for the others."""
        opts, judge = self.options, self._judge
        ncat = len(bank.categories)
        nearest = np.full((len(clause_sim), ncat), -1.0, dtype=np.float32)
        for c in range(ncat):
            mine = bank.forbids & (bank.category_of == c)
            nearest[:, c] = clause_sim[:, mine].max(axis=1)
        prior = np.zeros_like(nearest)
        if opts.head_weight > 0:
            # The output judge's category head (trained on the default policy's category ids)
            # is the better reader of topic; categories it does not know get an even share.
            head = judge.bundle.heads["category"]
            known = list(head.classes)
            p_cat = head.predict_proba((response_vecs + prompt_vecs) / 2.0)
            even = math.log(1.0 / max(len(known), 1))
            for c, cid in enumerate(bank.categories):
                prior[:, c] = (
                    np.log(p_cat[:, known.index(cid)] + _HEAD_FLOOR) if cid in known else even
                )
        z = nearest + opts.head_weight * prior
        share: NDArray[np.float32] = np.exp(
            (z - z.max(axis=1, keepdims=True)) / opts.attribution_temperature
        ).astype(np.float32)
        return share

    # -- verdicts ----------------------------------------------------------------------------

    def _verdict(
        self, ev: _Evidence, thresholds: dict[str, float], spec: ClassifierSpec
    ) -> Verdict:
        bank = self.bank
        scores = {c: float(s) for c, s in zip(bank.categories, ev.scores, strict=True)}
        if ev.p_refusal >= self.options.refusal_gate:
            return Verdict(
                flagged=False,
                scores=scores,
                label="refusal",
                rationale=(
                    f"No violation: the response is a refusal (P(refusal) = {ev.p_refusal:.2f}), "
                    "and a refusal never violates the policy."
                ),
                spec=spec,
            )
        verdict = Verdict.from_scores(scores, thresholds, spec)
        if not verdict.flagged:
            return verdict.model_copy(
                update={"label": "safe", "rationale": self._why_safe(ev, thresholds)}
            )
        top = bank.categories.index(verdict.categories[0])
        in_top = bank.category_of == top
        rule_here = np.where(in_top & bank.unseen, ev.rule, -1.0)
        if rule_here.max() > ev.harm[top]:
            k, path = int(np.argmax(rule_here)), "rule"
        else:
            k, path = int(np.argmax(np.where(in_top & bank.forbids, ev.clause_sim, -2.0))), "harm"
        why = self._why_rule(ev, k) if path == "rule" else self._why_harm(ev, k)
        return verdict.model_copy(
            update={"clause": bank.clauses[k].id, "label": path, "rationale": why}
        )

    def _nearest(self, ev: _Evidence, k: int) -> str:
        """How clause ``k`` matched: its own text, or the example that illustrates it."""
        bank = self.bank
        row = bank.best_row(ev.row_sim, k)
        how = f"similarity {ev.clause_sim[k]:.2f}"
        if bank.from_example[row]:
            how += f", via the policy's example {_quote(bank.texts[row])}"
        return how

    def _nearest_allowed(self, ev: _Evidence) -> str:
        bank = self.bank
        allowed = ~bank.forbids
        if not allowed.any():
            return "the policy has no allowed clauses"
        j = int(np.argmax(np.where(allowed, ev.clause_sim, -2.0)))
        return f"nearest allowed clause {bank.clauses[j].id} at {ev.clause_sim[j]:.2f}"

    def _why_harm(self, ev: _Evidence, k: int) -> str:
        clause = self.bank.clauses[k]
        return (
            f"Violates {clause.id} {_quote(clause.text)}: the response complies "
            f"(P(refusal) = {ev.p_refusal:.2f}) and the output judge rates it harmful "
            f"(P(harm) = {ev.p_harm:.2f}); of the {clause.category} rules it is nearest to this "
            f"one ({self._nearest(ev, k)}; {self._nearest_allowed(ev)})."
        )

    def _why_rule(self, ev: _Evidence, k: int) -> str:
        clause = self.bank.clauses[k]
        which = "an under-18 rule" if clause.kind == "under_18" else "a rule of this policy"
        return (
            f"Violates {clause.id} {_quote(clause.text)}, {which} that no trained head has "
            f"learnt: the response complies (P(refusal) = {ev.p_refusal:.2f}) and the exchange "
            f"matches the rule ({self._nearest(ev, k)}; {self._nearest_allowed(ev)}); the output "
            f"judge alone gives P(harm) = {ev.p_harm:.2f}."
        )

    def _why_safe(self, ev: _Evidence, thresholds: dict[str, float]) -> str:
        bank = self.bank
        k = int(np.argmax(np.where(bank.forbids, ev.clause_sim, -2.0)))
        c = int(np.argmax(ev.scores))
        cid = bank.categories[c]
        return (
            f"No violation: the highest category score, {cid} {ev.scores[c]:.2f}, is under its "
            f"threshold {thresholds[cid]:.2f} (P(harm) = {ev.p_harm:.2f}, P(refusal) = "
            f"{ev.p_refusal:.2f}); nearest forbidding clause {bank.clauses[k].id} at "
            f"{ev.clause_sim[k]:.2f}, {self._nearest_allowed(ev)}."
        )

    def describe(self) -> dict[str, Any]:
        """The bank's size and which clauses only the rule path can apply (for reports)."""
        bank = self.bank
        return {
            "clauses": len(bank.clauses),
            "vectors": len(bank.texts),
            "rule_path_clauses": [
                c.id for c, u in zip(bank.clauses, bank.unseen, strict=True) if u
            ],
        }
