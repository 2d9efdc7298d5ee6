"""The embedded classifiers: small trained heads over packaged sentence embeddings, offline, CPU.

Three classifiers share one embedding model and one artefact format:

* ``embedded-prompt`` — is this request or text disallowed, in which policy category, and is it
  a prompt attack (jailbreak or injection)?
* ``embedded-output`` — does this response violate the policy, given the request?
* ``refusal`` — did the model comply, refuse, or partly refuse?

They follow scikit-learn's estimator contract: the constructor only stores parameters, ``fit``
learns ``bundle_`` and returns ``self``, scores come from ``predict_proba`` and thresholds (from the
policy, per audience) are applied separately in ``classify``. Without ``fit`` the packaged heads are
loaded, hash-checked, on first use.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from safestack.classify._embedding import Embedder, default_embedder, windows
from safestack.classify._heads import Head, HeadBundle
from safestack.classify._inputs import as_exchanges, as_texts
from safestack.classify._policy_bound import PolicyBound
from safestack.classify._protocol import ClassifierInput, Exchange, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.errors import ArtifactError, InputError
from safestack.policy import Audience, Policy

__all__ = [
    "HEADS_DIR",
    "REFUSAL_LABELS",
    "EmbeddedOutputClassifier",
    "EmbeddedPromptClassifier",
    "PromptLabel",
    "RefusalDetector",
]

log = logging.getLogger(__name__)

HEADS_DIR = Path(__file__).with_name("heads")
MANIFEST = "manifest.json"
ATTACK = "prompt_attack"
REFUSAL_LABELS = ("compliance", "refusal", "partial_refusal")


class PromptLabel(Protocol):
    """What ``EmbeddedPromptClassifier.fit`` needs to know about one training text."""

    @property
    def unsafe(self) -> bool | None: ...  # None: not a content-harm example either way
    @property
    def category(self) -> str | None: ...
    @property
    def attack(self) -> bool: ...


@dataclass(frozen=True)
class HeadOptions:
    """How heads are trained: one place for the knobs, so signatures stay short."""

    hidden: int = 512
    alpha: float = 1e-2
    seed: int = 0


def _mlp(y: NDArray[Any], x: NDArray[np.float32], opts: HeadOptions) -> Head:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        (opts.hidden,),
        alpha=opts.alpha,
        max_iter=300,
        early_stopping=True,
        random_state=opts.seed,
    )
    _fit_logging_convergence(model, x, y)
    return Head.from_sklearn(model)


def _linear(y: NDArray[Any], x: NDArray[np.float32], opts: HeadOptions) -> Head:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=4.0, max_iter=3000, random_state=opts.seed)
    _fit_logging_convergence(model, x, y)
    return Head.from_sklearn(model)


def _fit_logging_convergence(model: Any, x: NDArray[np.float32], y: NDArray[Any]) -> None:
    """Fit, turning scikit-learn's convergence warning into a log line.

    Not converging within the iteration budget is a fact worth recording about a training run,
    not an error: the head is still measured on held-out data before it ships.
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            log.warning("%s: %s", type(model).__name__, warning.message)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def packaged_heads(name: str) -> tuple[Path, str]:
    """Path and pinned SHA-256 of a packaged head file, from the manifest beside it."""
    manifest = HEADS_DIR / MANIFEST
    try:
        entries = json.loads(manifest.read_text())
        entry = entries[name]
    except FileNotFoundError:
        raise ArtifactError(f"{manifest} is missing; run `safestack train`") from None
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"{manifest} has no valid entry for {name!r}: {exc}") from exc
    return HEADS_DIR / entry["file"], entry["sha256"]


class _EmbeddedClassifier(PolicyBound):
    """Shared plumbing: policy, audience, embedder, lazy hash-checked heads, the spec."""

    registry_name: ClassVar[str]
    input_kind: ClassVar[InputKind]

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        audience: Audience | str = Audience.ADULT,
        heads_path: str | Path | None = None,
        heads_sha256: str | None = None,
        embedder: Embedder | None = None,
        options: HeadOptions | None = None,
    ) -> None:
        self.policy = policy
        self.audience = audience
        self.heads_path = heads_path
        self.heads_sha256 = heads_sha256
        self.embedder = embedder
        self.options = options or HeadOptions()
        self.bundle_: HeadBundle | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def _embedder(self) -> Embedder:
        return self.embedder if self.embedder is not None else default_embedder()

    @property
    def bundle(self) -> HeadBundle:
        """The fitted heads, or the packaged / configured ones loaded on first use."""
        if self.bundle_ is None:
            sha: str | None
            if self.heads_path is None:
                path, sha = packaged_heads(self.registry_name)
            else:
                path, sha = Path(self.heads_path), self.heads_sha256
            bundle = HeadBundle.load(path, sha256=sha)
            trained_on = bundle.meta.get("embedder")
            if trained_on != self._embedder.name:
                raise ArtifactError(
                    f"{path} was trained on embeddings of {trained_on!r}, not "
                    f"{self._embedder.name!r}; retrain with `safestack train`"
                )
            if bundle.meta.get("classifier") != self.registry_name:
                raise ArtifactError(
                    f"{path} holds heads for {bundle.meta.get('classifier')!r}, "
                    f"not {self.registry_name!r}"
                )
            self.bundle_ = bundle
        return self.bundle_

    @property
    def spec(self) -> ClassifierSpec:
        bundle = self.bundle
        return ClassifierSpec(
            name=self.registry_name,
            version=str(bundle.meta.get("version", "unversioned")),
            artifact_sha256=bundle.sha256,
            args={
                "audience": self._audience.value,
                "embedder": self._embedder.name,
                "policy": f"{self._policy.name}@{self._policy.version}",
            },
        )

    def warm_up(self) -> None:
        """Load the heads and the embedding model and run them once, so the first real
        request does not pay for loading (the safety stack calls this before timing layers)."""
        self.bundle  # noqa: B018  (loads and hash-checks the heads)
        self._embedder.embed(["warm-up"])

    def save(self, path: str | Path) -> str:
        """Write the fitted heads; returns the SHA-256 to pin in a manifest."""
        if self.bundle_ is None:
            raise ArtifactError("nothing to save: call fit() first")
        return self.bundle_.save(path)

    def _new_bundle(self, heads: dict[str, Head], **meta: Any) -> HeadBundle:
        return HeadBundle(
            heads,
            {
                "classifier": self.registry_name,
                "embedder": self._embedder.name,
                "embedder_revision": self._embedder.revision,
                "options": {
                    "hidden": self.options.hidden,
                    "alpha": self.options.alpha,
                    "seed": self.options.seed,
                },
                **meta,
            },
        )

    # -- features ----------------------------------------------------------------------------

    def _embed_windows(self, texts: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
        """Embeddings of every window of every text, and the owner text of each window."""
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for piece in windows(text):
                pieces.append(piece)
                owner.append(i)
        return self._embedder.embed(pieces), np.asarray(owner, dtype=np.intp)

    def _embed_first(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One embedding per text, of its first window (the model reads ~256 word pieces)."""
        return self._embedder.embed([windows(t)[0] for t in texts])


def _max_by_owner(
    values: NDArray[np.float32], owner: NDArray[np.intp], n: int
) -> NDArray[np.float32]:
    out = np.zeros((n, values.shape[1]), dtype=np.float32)
    np.maximum.at(out, owner, values)
    return out


def _category_scores(
    p_unsafe: NDArray[np.float32], p_category: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Per-category scores: the top category gets P(unsafe), the others in proportion.

    A request that is surely disallowed but split between two categories would otherwise fall
    under every category's threshold; this keeps "is it disallowed" and "which category" apart.
    """
    top = p_category.max(axis=1, keepdims=True)
    scores: NDArray[np.float32] = (p_unsafe[:, None] * p_category / np.maximum(top, 1e-9)).astype(
        np.float32
    )
    return scores


@register_classifier("embedded-prompt")
class EmbeddedPromptClassifier(_EmbeddedClassifier):
    """Is a request (or any text) disallowed, in which category, and is it a prompt attack?

    Heads: ``unsafe`` (MLP, binary), ``category`` (multinomial over the policy categories seen in
    training) and ``attack`` (MLP, binary; scored as the ``prompt_attack`` category). Long texts
    are read in windows and each category keeps its highest score over the windows.
    """

    registry_name = "embedded-prompt"
    input_kind = "text"

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[PromptLabel],
        *,
        embeddings: NDArray[np.float32] | None = None,
        version: str = "dev",
    ) -> EmbeddedPromptClassifier:
        if len(texts) != len(labels):
            raise InputError(f"{len(texts)} texts but {len(labels)} labels")
        x = self._embed_first(texts) if embeddings is None else embeddings
        known = set(self._policy.category_ids)
        harm = np.array([lab.unsafe is not None for lab in labels])
        y_unsafe = np.array([bool(lab.unsafe) for lab in labels])
        cat_rows = np.array(
            [
                bool(lab.unsafe) and lab.category in known and lab.category != ATTACK
                for lab in labels
            ]
        )
        y_cat = np.array([str(lab.category) for lab in labels])
        y_attack = np.array([lab.attack for lab in labels])
        heads = {
            "unsafe": _mlp(y_unsafe[harm], x[harm], self.options),
            "category": _linear(y_cat[cat_rows], x[cat_rows], self.options),
            "attack": _mlp(y_attack, x, self.options),
        }
        self.bundle_ = self._new_bundle(heads, version=version)
        return self

    @property
    def categories(self) -> list[str]:
        """The category ids this classifier scores, in score-column order."""
        return [*self.bundle.heads["category"].classes, ATTACK]

    def predict_proba(self, items: Sequence[ClassifierInput]) -> NDArray[np.float32]:
        """Scores in [0, 1], one row per text, one column per entry of :attr:`categories`."""
        texts = as_texts(items)
        return self._scores(texts)

    def _scores(self, texts: list[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), len(self.categories)), dtype=np.float32)
        live = [i for i, t in enumerate(texts) if t.strip()]  # empty text violates nothing
        if not live:
            return out
        x, owner = self._embed_windows([texts[i] for i in live])
        out[live] = _max_by_owner(self.score_embeddings(x), owner, len(live))
        return out

    def score_embeddings(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Scores of precomputed embeddings (one row each), columns as :attr:`categories`."""
        heads = self.bundle.heads
        return np.column_stack(
            [
                _category_scores(
                    heads["unsafe"].predict_proba(x), heads["category"].predict_proba(x)
                ),
                heads["attack"].predict_proba(x),
            ]
        ).astype(np.float32)

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        texts = as_texts(items)
        scores = self._scores(texts)
        return _verdicts(
            scores, self.categories, self._policy.thresholds(self._audience), self.spec
        )


def _verdicts(
    scores: NDArray[np.float32],
    columns: list[str],
    thresholds: dict[str, float],
    spec: ClassifierSpec,
) -> list[Verdict]:
    return [
        Verdict.from_scores(dict(zip(columns, map(float, row), strict=True)), thresholds, spec)
        for row in scores
    ]


@register_classifier("refusal")
class RefusalDetector(_EmbeddedClassifier):
    """Did the model comply, refuse, or partly refuse? Trained on XSTest's human labels.

    Reads the response's first window (refusals are stated up front) and the request, because
    "I can't help with that" means something else after "Tell me a joke you can't stand".
    ``flagged`` is true for a full or partial refusal; ``label`` names which.
    """

    registry_name = "refusal"
    input_kind = "exchange"

    def _features(self, exchanges: list[Exchange]) -> NDArray[np.float32]:
        return np.hstack(
            [
                self._embed_first([e.response for e in exchanges]),
                self._embed_first([e.prompt for e in exchanges]),
            ]
        )

    def fit(
        self,
        exchanges: Sequence[Exchange],
        labels: Sequence[str],
        *,
        features: NDArray[np.float32] | None = None,
        version: str = "dev",
    ) -> RefusalDetector:
        bad = sorted(set(labels) - set(REFUSAL_LABELS))
        if bad:
            raise InputError(f"unknown refusal labels {bad}; allowed: {', '.join(REFUSAL_LABELS)}")
        x = self._features(as_exchanges(exchanges)) if features is None else features
        head = _linear(np.asarray(labels), x, self.options)
        self.bundle_ = self._new_bundle({"refusal": head}, version=version)
        return self

    def predict_proba(
        self, items: Sequence[ClassifierInput], *, features: NDArray[np.float32] | None = None
    ) -> NDArray[np.float32]:
        """One row per exchange, columns in the order of :data:`REFUSAL_LABELS`."""
        head = self.bundle.heads["refusal"]
        if features is None:
            features = self._features(as_exchanges(items))
        p = head.predict_proba(features)
        order = [head.classes.index(label) for label in REFUSAL_LABELS]
        return p[:, order]

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        exchanges = as_exchanges(items)
        spec = self.spec
        out = []
        for exchange, row in zip(exchanges, self.predict_proba(exchanges), strict=True):
            scores = dict(zip(REFUSAL_LABELS, map(float, row), strict=True))
            label = REFUSAL_LABELS[int(np.argmax(row))]
            if not exchange.response.strip():
                label, scores = (
                    "refusal",
                    {"compliance": 0.0, "refusal": 1.0, "partial_refusal": 0.0},
                )
            out.append(
                Verdict(
                    flagged=label != "compliance",
                    categories=[],
                    scores=scores,
                    label=label,
                    spec=spec,
                )
            )
        return out


@register_classifier("embedded-output")
class EmbeddedOutputClassifier(_EmbeddedClassifier):
    """Does a response violate the policy, given its request?

    Heads: ``harm`` (MLP over the response, the request, and the refusal detector's three
    probabilities — a refusal is rarely harmful), ``refusal`` (a copy of the refusal detector's
    head, so the artefact is self-contained) and ``category`` (the prompt classifier's category
    head, applied to the request and the response together).
    """

    registry_name = "embedded-output"
    input_kind = "exchange"

    def features(self, exchanges: Sequence[Exchange]) -> NDArray[np.float32]:
        """Features of each exchange: [response, prompt, P(compliance, refusal, partial)]."""
        ex = as_exchanges(exchanges)
        resp = self._embed_first([e.response for e in ex])
        prompt = self._embed_first([e.prompt for e in ex])
        refusal = self.bundle.heads["refusal"]
        p_ref = refusal.predict_proba(np.hstack([resp, prompt]))
        p_ref = p_ref[:, [refusal.classes.index(label) for label in REFUSAL_LABELS]]
        return np.hstack([resp, prompt, p_ref]).astype(np.float32)

    def fit(
        self,
        exchanges: Sequence[Exchange],
        unsafe: Sequence[bool],
        *,
        refusal_head: Head,
        category_head: Head,
        features: NDArray[np.float32] | None = None,
        version: str = "dev",
    ) -> EmbeddedOutputClassifier:
        self.bundle_ = self._new_bundle(
            {"refusal": refusal_head, "category": category_head}, version=version
        )
        x = self.features(exchanges) if features is None else features
        harm = _mlp(np.asarray(unsafe, dtype=bool), x, self.options)
        self.bundle_.heads["harm"] = harm
        return self

    @property
    def categories(self) -> list[str]:
        return list(self.bundle.heads["category"].classes)

    def predict_proba(
        self, items: Sequence[ClassifierInput], *, features: NDArray[np.float32] | None = None
    ) -> NDArray[np.float32]:
        """P(the response violates the policy), one value per exchange."""
        if features is None:
            features = self.features(as_exchanges(items))
        return self.bundle.heads["harm"].predict_proba(features)

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        exchanges = as_exchanges(items)
        if not exchanges:
            return []
        x = self.features(exchanges)
        p_harm = self.predict_proba(exchanges, features=x)
        dim = self._embedder.dim
        about = (x[:, :dim] + x[:, dim : 2 * dim]) / 2.0  # response and request, together
        scores = _category_scores(p_harm, self.bundle.heads["category"].predict_proba(about))
        for i, e in enumerate(exchanges):
            if not e.response.strip():
                scores[i] = 0.0  # an empty response violates nothing
        return _verdicts(
            scores, self.categories, self._policy.thresholds(self._audience), self.spec
        )
