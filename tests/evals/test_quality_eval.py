"""Classifier quality: hand-computed numbers on a scripted classifier, real ones held out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from safestack.classify import ClassifierInput, ClassifierSpec, Verdict
from safestack.classify._protocol import InputKind
from safestack.errors import DataError, InputError
from safestack.evals.quality import classifier_quality, quality_on_dataset

SPEC = ClassifierSpec(name="scripted", version="0")


class Scripted:
    """A classifier whose verdicts are given per text: the input of the function under test."""

    input_kind: InputKind = "text"

    def __init__(self, verdicts: dict[str, tuple[list[str], dict[str, float]]]) -> None:
        self.verdicts = verdicts

    @property
    def spec(self) -> ClassifierSpec:
        return SPEC

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        out = []
        for item in items:
            categories, scores = self.verdicts[str(item)]
            out.append(
                Verdict(flagged=bool(categories), categories=categories, scores=scores, spec=SPEC)
            )
        return out


CASES: list[tuple[str, str | None, list[str], dict[str, float]]] = [
    ("t1", "hate", ["hate"], {"hate": 0.9, "violence": 0.1}),
    ("t2", "hate", ["violence"], {"hate": 0.3, "violence": 0.8}),
    ("t3", "violence", ["violence"], {"hate": 0.0, "violence": 0.7}),
    ("t4", None, ["hate"], {"hate": 0.6, "violence": 0.0}),
    ("t5", "safe", [], {"hate": 0.1, "violence": 0.0}),
    ("t6", "unsafe", ["violence"], {"hate": 0.0, "violence": 0.9}),
    ("t7", "hate", [], {"hate": 0.2, "violence": 0.0}),
]


def test_hand_computed_quality() -> None:
    clf = Scripted({t: (cats, scores) for t, _, cats, scores in CASES})
    report = classifier_quality(clf, [c[0] for c in CASES], [c[1] for c in CASES], batch_size=3)
    b = report.binary
    # TP t1 t2 t3 t6, FP t4, FN t7, TN t5
    assert (b["n"], b["positives"]) == (7, 5)
    assert (b["precision"], b["recall"], b["fpr"]) == (0.8, 0.8, 0.5)
    assert b["f1"] == 0.8 and b["accuracy"] == round(5 / 7, 4)
    assert b["auprc"] is not None and 0.0 <= b["auprc"] <= 1.0

    rows = {r.category: r for r in report.per_category}
    assert list(rows) == ["hate", "violence"]  # "unsafe" has no category: binary only
    hate, violence = rows["hate"], rows["violence"]
    assert (hate.n_samples, hate.n_flagged, hate.precision, hate.recall) == (3, 2, 0.5, 0.3333)
    assert (violence.n_samples, violence.n_flagged) == (1, 3)
    assert (violence.precision, violence.recall) == (0.3333, 1.0)
    assert report.confusion == {
        "hate": {"hate": 1, "none": 1, "violence": 1},
        "safe": {"hate": 1, "none": 1},
        "unsafe": {"violence": 1},
        "violence": {"violence": 1},
    }
    assert report.top_category["n"] == 7
    report.model_dump_json()


def test_bad_input() -> None:
    clf = Scripted({})
    with pytest.raises(InputError, match="2 items but 1 labels"):
        classifier_quality(clf, ["a", "b"], ["hate"])
    with pytest.raises(DataError, match="unknown source"):
        quality_on_dataset("nope")


@pytest.mark.slow
def test_embedded_prompt_classifier_on_held_out_toxigen(datasets_dir: Path) -> None:
    report = quality_on_dataset("toxigen", datasets_dir=datasets_dir, limit=200)
    assert report.n == 200 and report.dataset == "toxigen"
    assert "held-out" in report.split
    assert report.classifier.name == "embedded-prompt"
    b = report.binary
    assert b["n"] == 200 and 0 < b["positives"] < 200
    for key in ("precision", "recall", "f1", "fpr", "auprc", "accuracy"):
        assert b[key] is None or 0.0 <= b[key] <= 1.0
    hate = next(r for r in report.per_category if r.category == "hate")
    assert hate.n_samples == b["positives"]  # toxigen positives are all labelled hate
    for row in report.per_category:
        for value in (row.precision, row.recall, row.f1, row.auprc):
            assert value is None or 0.0 <= value <= 1.0
    assert sum(sum(row.values()) for row in report.confusion.values()) == 200
    assert set(report.confusion) <= {"hate", "safe"}
