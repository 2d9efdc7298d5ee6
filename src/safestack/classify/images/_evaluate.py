"""Measure an image classifier on a user's labelled folder: one sub-folder per class label.

This is how recall on what cannot be measured here (sexual images, photographs of children) gets
measured: by the user, on their own data, with the same code that produced the card's tables.

Layout::

    FOLDER/
      sexual/ not_sexual/                                    for image-sexual
      no_photorealistic_person/ photorealistic_adult/
        photorealistic_child/                                 for image-person
      sexual_minors/ sexual/ not_sexual/                      for image-default

Files that cannot be decoded, and images a classifier could not judge (a fail-closed verdict),
are listed as errors and left out of the metrics; they never stop the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from safestack.classify._protocol import Classifier
from safestack.classify._verdict import Verdict
from safestack.classify.images._person import PERSON_LABELS
from safestack.errors import InputError, SafestackError
from safestack.media import DEFAULT_LIMITS, ImageLimits, decode_image

__all__ = [
    "CLASS_LABELS",
    "ClassReport",
    "EvaluationError",
    "EvaluationReport",
    "evaluate_folder",
    "predicted_class",
]

#: The class labels each classifier predicts, i.e. the sub-folder names it can be measured on.
CLASS_LABELS: dict[str, tuple[str, ...]] = {
    "image-sexual": ("sexual", "not_sexual"),
    "image-person": PERSON_LABELS,
    "image-default": ("sexual_minors", "sexual", "not_sexual"),
}


def predicted_class(classifier_name: str, verdict: Verdict) -> str:
    """The class a verdict predicts, in the vocabulary of ``CLASS_LABELS[classifier_name]``."""
    if classifier_name == "image-person":
        if verdict.label is None:
            raise InputError("image-person returned no label")
        return verdict.label
    if "sexual_minors" in verdict.categories:
        return "sexual_minors"
    return "sexual" if "sexual" in verdict.categories else "not_sexual"


class ClassReport(BaseModel):
    """Metrics for one class; precision is None when nothing was predicted as this class."""

    model_config = ConfigDict(frozen=True)

    n_samples: int
    n_predicted: int
    precision: float | None
    recall: float | None
    f1: float | None


class EvaluationError(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    error: str


class EvaluationReport(BaseModel):
    """What ``safestack images evaluate --json`` prints."""

    model_config = ConfigDict(frozen=True)

    classifier: str
    n_samples: int = Field(description="Images judged (errors excluded).")
    classes: dict[str, ClassReport]
    errors: list[EvaluationError] = Field(default_factory=list)


def _files(folder: Path, labels: tuple[str, ...]) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise InputError(f"{folder} has no sub-folders; expected some of: {', '.join(labels)}")
    unknown = [p.name for p in subdirs if p.name not in labels]
    if unknown:
        raise InputError(
            f"{folder}: sub-folder(s) {', '.join(unknown)} are not class labels of this "
            f"classifier; allowed: {', '.join(labels)}"
        )
    return [
        (d.name, f)
        for d in subdirs
        for f in sorted(d.iterdir())
        if f.is_file() and not f.name.startswith(".")
    ]


def _report(
    truth: list[str], predicted: list[str], labels: tuple[str, ...]
) -> dict[str, ClassReport]:
    out: dict[str, ClassReport] = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        n = truth.count(label)
        n_pred = predicted.count(label)
        precision = tp / n_pred if n_pred else None
        recall = tp / n if n else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else (0.0 if precision is not None and recall is not None else None)
        )
        out[label] = ClassReport(
            n_samples=n, n_predicted=n_pred, precision=precision, recall=recall, f1=f1
        )
    return out


def evaluate_folder(
    folder: str | Path,
    classifier_name: str,
    *,
    classifier: Classifier | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Judge every file under ``folder``'s class sub-folders; per-class precision, recall, F1.

    ``classifier`` defaults to ``create_classifier(classifier_name)``; pass one to reuse loaded
    models. ``progress(done, total)`` is called after each file.
    """
    from safestack.classify._registry import create_classifier

    if classifier_name not in CLASS_LABELS:
        raise InputError(f"cannot evaluate {classifier_name!r}; allowed: {', '.join(CLASS_LABELS)}")
    labels = CLASS_LABELS[classifier_name]
    files = _files(Path(folder), labels)
    clf = classifier or create_classifier(classifier_name)
    truth: list[str] = []
    predicted: list[str] = []
    errors: list[EvaluationError] = []
    for done, (label, path) in enumerate(files, start=1):
        try:
            image = decode_image(path.read_bytes(), limits)
            (verdict,) = clf.classify([image])
        except (OSError, SafestackError) as exc:
            errors.append(EvaluationError(path=str(path), error=f"{type(exc).__name__}: {exc}"))
        else:
            if verdict.error is not None:
                errors.append(EvaluationError(path=str(path), error=verdict.error))
            else:
                truth.append(label)
                predicted.append(predicted_class(classifier_name, verdict))
        if progress is not None:
            progress(done, len(files))
    return EvaluationReport(
        classifier=classifier_name,
        n_samples=len(truth),
        classes=_report(truth, predicted, labels),
        errors=errors,
    )
