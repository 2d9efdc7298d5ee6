"""Image classifiers: sexual content, photorealistic person / minor, and the rule joining them.

Registry names: ``image-default`` (what the stack calls: ``sexual`` and ``sexual_minors``,
labelled with the person label), ``image-sexual`` and ``image-person``. Inputs are
:class:`~safestack.media.DecodedImage`. Everything runs offline on CPU from packaged models
(open_nsfw, dlib, the CC0 age network, OpenCV HOG) plus a small photorealism head trained here;
``CARD.md`` beside this file says what each detects, how it fails, and what was measured.
"""

from safestack.classify.images._evaluate import ClassReport, EvaluationReport, evaluate_folder
from safestack.classify.images._people import DetectorOptions
from safestack.classify.images._person import (
    ADULT,
    CHILD,
    NO_PERSON,
    PERSON_LABELS,
    ImageFindings,
    PersonImageClassifier,
    person_label,
)
from safestack.classify.images._safety import ImageSafetyClassifier, combine
from safestack.classify.images._sexual import SexualContentImageClassifier

__all__ = [
    "ADULT",
    "CHILD",
    "NO_PERSON",
    "PERSON_LABELS",
    "ClassReport",
    "DetectorOptions",
    "EvaluationReport",
    "ImageFindings",
    "ImageSafetyClassifier",
    "PersonImageClassifier",
    "SexualContentImageClassifier",
    "combine",
    "evaluate_folder",
    "person_label",
]
