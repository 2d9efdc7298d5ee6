"""Face matching against the reference faces of people who opted out (optional extra ``faces``).

The opt-out registry blocks prompts that name a person who opted out; this package also catches
their face in uploads and outputs. dlib's public-domain models (from the ``face_recognition_models``
package, installed by ``pip install 'safestack[faces]'``) find each face and describe it with 128
numbers; a face within distance 0.5 of a reference descriptor (dlib's own operating point
is 0.6) is taken to be that person.
Importing this package loads nothing: the models load on first use. ``CARD.md`` beside this file
says what was measured and what could not be.

Registry name: ``opt-out-faces`` (input: :class:`~safestack.media.DecodedImage`).
"""

from safestack.classify.faces._embedder import (
    DESCRIPTOR_SIZE,
    FACE_MODELS,
    REFERENCE_MIN_SCORE,
    Face,
    FaceEmbedder,
    FaceModelFile,
)
from safestack.classify.faces._matcher import (
    DEFAULT_THRESHOLD,
    FaceMatch,
    FaceReference,
    OptOutFaceClassifier,
    OptOutFaceMatcher,
    default_embedder,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "DESCRIPTOR_SIZE",
    "FACE_MODELS",
    "REFERENCE_MIN_SCORE",
    "Face",
    "FaceEmbedder",
    "FaceMatch",
    "FaceModelFile",
    "FaceReference",
    "OptOutFaceClassifier",
    "OptOutFaceMatcher",
    "default_embedder",
]
