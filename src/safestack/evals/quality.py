"""Classifier quality: precision, recall, F1, AUPRC and the confusion table, per category.

:func:`classifier_quality` scores any :class:`~safestack.classify.Classifier` on any labelled
items. A label is a category id (the item violates the policy in that category), ``"safe"`` or
None (it does not), or ``"unsafe"`` (it does, in no category the data names: it counts for the
binary numbers only). The report, in the layout of the published "classifier results" tables:

* ``binary`` — flagged vs. labelled unsafe: n, positives, precision, recall, F1, accuracy, FPR
  (from the verdicts' ``flagged``) and AUPRC (from each verdict's highest category score).
* ``per_category`` — for every category that is a label or was flagged: ``n_samples`` (items
  with that label), ``n_flagged``, precision and recall of "the verdict flags this category" vs.
  "the label is this category", F1 and AUPRC of that category's score.
* ``confusion`` — true label (``safe`` for negatives) × predicted top category (the first of
  the verdict's flagged categories; ``none`` when not flagged, ``unspecified`` when flagged
  without a category), as counts.

The numbers come from :mod:`safestack.classify.training.metrics`, the same helpers training
reports with. :func:`quality_on_dataset` measures the embedded prompt classifier on the part of
a training source it never saw (its shipped held-out split).
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from safestack.classify import Classifier, ClassifierInput, ClassifierSpec, Verdict
from safestack.classify.embedded import HEADS_DIR
from safestack.classify.training.cache import text_key
from safestack.classify.training.metrics import binary_report, multiclass_report
from safestack.classify.training.sources import SOURCES, LabelledText
from safestack.datasets_dir import find_datasets_dir
from safestack.errors import DataError, InputError
from safestack.evals._evidence import write_report_log

__all__ = [
    "NEGATIVE",
    "UNCATEGORISED",
    "CategoryQuality",
    "QualityReport",
    "classifier_quality",
    "heldout_keys",
    "label_of",
    "quality_on_dataset",
    "write_quality_log",
]

NEGATIVE = "safe"
UNCATEGORISED = "unsafe"
_NONE = "none"
_UNSPECIFIED = "unspecified"


class CategoryQuality(BaseModel):
    """One row of a "classifier results" table."""

    model_config = ConfigDict(frozen=True)

    category: str
    n_samples: int = Field(description="Items labelled with this category.")
    n_flagged: int = Field(description="Items whose verdict flags this category.")
    precision: float | None
    recall: float | None
    f1: float | None
    auprc: float | None = Field(description="Of this category's score; None without positives.")


class QualityReport(BaseModel):
    """A classifier's quality on one labelled set."""

    model_config = ConfigDict(frozen=True)

    classifier: ClassifierSpec
    dataset: str
    split: str = Field(description="Which items were scored, and whether the classifier saw them.")
    n: int
    binary: dict[str, Any]
    per_category: list[CategoryQuality]
    confusion: dict[str, dict[str, int]] = Field(
        description="true label → predicted top category → count."
    )
    top_category: dict[str, Any] = Field(
        description="Accuracy and per-class precision / recall of the top category as a label "
        "(safe / none merged into 'safe')."
    )


def _is_positive(label: str | None) -> bool:
    return label is not None and label != NEGATIVE


def _top(verdict: Verdict) -> str:
    if not verdict.flagged:
        return _NONE
    return verdict.categories[0] if verdict.categories else _UNSPECIFIED


def _max_score(verdict: Verdict) -> float:
    if verdict.scores:
        return max(verdict.scores.values())
    return 1.0 if verdict.flagged else 0.0


def classifier_quality(
    classifier: Classifier,
    items: Sequence[ClassifierInput],
    labels: Sequence[str | None],
    *,
    dataset: str = "custom",
    split: str = "as given",
    batch_size: int = 256,
) -> QualityReport:
    """Run ``classifier`` on ``items`` and compare its verdicts with ``labels``."""
    if len(items) != len(labels):
        raise InputError(f"{len(items)} items but {len(labels)} labels")
    if not items:
        raise InputError("classifier_quality needs at least one labelled item")
    verdicts: list[Verdict] = []
    for start in range(0, len(items), batch_size):
        verdicts.extend(classifier.classify(items[start : start + batch_size]))
    truth = [_is_positive(label) for label in labels]
    flags = binary_report(truth, [float(v.flagged) for v in verdicts], threshold=0.5)
    ranked = binary_report(truth, [_max_score(v) for v in verdicts])
    binary = {**flags, "threshold": "classifier's own", "auprc": ranked["auprc"]}

    true_names = [str(label) if _is_positive(label) else NEGATIVE for label in labels]
    categories = sorted(
        (set(true_names) - {NEGATIVE, UNCATEGORISED}) | {c for v in verdicts for c in v.categories}
    )
    per_category = []
    for category in categories:
        y = [name == category for name in true_names]
        hit = [float(category in v.categories) for v in verdicts]
        counts = binary_report(y, hit, threshold=0.5)
        auprc = binary_report(y, [v.scores.get(category, 0.0) for v in verdicts])["auprc"]
        per_category.append(
            CategoryQuality(
                category=category,
                n_samples=sum(y),
                n_flagged=int(sum(hit)),
                precision=counts["precision"],
                recall=counts["recall"],
                f1=counts["f1"],
                auprc=auprc,
            )
        )

    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    tops = [_top(v) for v in verdicts]
    for name, top in zip(true_names, tops, strict=True):
        confusion[name][top] += 1
    predicted = [NEGATIVE if top == _NONE else top for top in tops]
    return QualityReport(
        classifier=classifier.spec,
        dataset=dataset,
        split=split,
        n=len(items),
        binary=binary,
        per_category=per_category,
        confusion={k: dict(sorted(confusion[k].items())) for k in sorted(confusion)},
        top_category=multiclass_report(true_names, predicted),
    )


@functools.cache
def _heldout(name: str) -> frozenset[str]:
    path = HEADS_DIR / "heldout.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return frozenset(data[name])
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"no held-out split for {name!r} in {path}: {exc}") from exc


def heldout_keys(classifier: str = "embedded-prompt") -> frozenset[str]:
    """``text_key`` of every text in the shipped held-out split of a packaged classifier."""
    return _heldout(classifier)


def label_of(record: LabelledText) -> str | None:
    """The quality label of a training record: its category, ``unsafe`` or None (safe).

    Prompt attacks (``unsafe is None`` with a category) keep their category; a record with
    neither a harm label nor a category is not a positive of anything.
    """
    if record.unsafe or (record.unsafe is None and record.category):
        return record.category or UNCATEGORISED
    return None


def quality_on_dataset(
    name: str,
    classifier: Classifier | None = None,
    *,
    datasets_dir: str | Path | None = None,
    limit: int | None = None,
) -> QualityReport:
    """The embedded prompt classifier's quality on the held-out part of training source ``name``.

    Only records whose text is in ``heldout.json["embedded-prompt"]`` are scored, so the numbers
    are on data the shipped heads never saw. ``limit`` keeps the first records in file order.
    Passing another ``classifier`` scores it on the same items (its split note then only says
    which items were used).
    """
    if name not in SOURCES:
        raise DataError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    root = find_datasets_dir(datasets_dir)
    keys = heldout_keys()
    seen: set[str] = set()
    records = []
    for record in SOURCES[name].load(root):
        key = text_key(record.text)
        if key in keys and key not in seen:
            seen.add(key)
            records.append(record)
    if limit is not None:
        records = records[:limit]
    if not records:
        raise DataError(f"source {name!r} has no texts in the embedded-prompt held-out split")
    if classifier is None:
        from safestack.classify import EmbeddedPromptClassifier

        classifier = EmbeddedPromptClassifier()
    split = (
        f"held-out split of the embedded-prompt heads ({len(records)} texts of {name!r} never "
        "seen in training)"
    )
    return classifier_quality(
        classifier,
        [r.text for r in records],
        [label_of(r) for r in records],
        dataset=name,
        split=split,
    )


def write_quality_log(
    log_dir: str | Path, reports: Sequence[QualityReport], *, limit: int | None = None
) -> Path:
    """Log ``reports`` as evidence (a ``quality`` report log): one row per dataset.

    Rows carry the binary numbers the published "classifier results" tables show; the header
    keeps every full report (per category, confusion) for whoever needs more.
    """
    rows = [
        {
            "classifier": r.classifier.name,
            "dataset": r.dataset,
            "split": r.split,
            "n": r.n,
            **{
                key: r.binary.get(key)
                for key in ("positives", "precision", "recall", "f1", "auprc", "fpr", "accuracy")
            },
        }
        for r in reports
    ]
    licences = {name: source.licence for name, source in SOURCES.items()}
    return write_report_log(
        log_dir,
        "quality",
        "quality",
        rows,
        datasets=[f"{r.dataset} ({licences.get(r.dataset, 'see its SOURCE.md')})" for r in reports],
        header={"limit": limit, "reports": [r.model_dump(mode="json") for r in reports]},
    )
