"""Classifier quality numbers, computed one way everywhere (scikit-learn underneath)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["binary_report", "multiclass_report"]


def binary_report(
    y_true: ArrayLike, y_score: ArrayLike, *, threshold: float = 0.5
) -> dict[str, Any]:
    """Precision, recall, F1, accuracy, FPR at ``threshold``, and AUPRC, with the counts.

    AUPRC is ``None`` when the split has no positives (it is undefined there), and so is any ratio
    whose denominator is zero: a number that cannot be measured is not reported as 0.
    """
    from sklearn.metrics import average_precision_score

    t = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=float)
    p = s >= threshold
    tp, fp = int(np.sum(p & t)), int(np.sum(p & ~t))
    fn, tn = int(np.sum(~p & t)), int(np.sum(~p & ~t))

    def ratio(a: int, b: int) -> float | None:
        return None if b == 0 else round(a / b, 4)

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = (
        None
        if not precision or not recall
        else round(2 * precision * recall / (precision + recall), 4)
    )
    auprc = round(float(average_precision_score(t, s)), 4) if t.any() and (~t).any() else None
    return {
        "n": int(t.size),
        "positives": int(t.sum()),
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": ratio(tp + tn, int(t.size)),
        "fpr": ratio(fp, fp + tn),
        "auprc": auprc,
    }


def multiclass_report(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy and per-class precision / recall / F1 of a labelling."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = sorted(set(y_true) | set(y_pred))
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    acc = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else None
    return {
        "n": len(y_true),
        "accuracy": None if acc is None else round(acc, 4),
        "per_class": {
            lab: {
                "precision": round(float(pi), 4),
                "recall": round(float(ri), 4),
                "f1": round(float(fi), 4),
                "support": int(ni),
            }
            for lab, pi, ri, fi, ni in zip(labels, p, r, f, n, strict=True)
        },
    }
