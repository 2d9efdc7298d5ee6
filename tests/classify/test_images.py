"""The image classifiers, with their real models, on real public-domain / CC0 photographs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from safestack.classify import classifier_names, create_classifier
from safestack.classify.images import (
    ADULT,
    CHILD,
    NO_PERSON,
    ImageSafetyClassifier,
    PersonImageClassifier,
    SexualContentImageClassifier,
    combine,
    person_label,
)
from safestack.classify.images._corpus import SAMPLES
from safestack.classify.images._photoreal import packaged_photoreal_head
from safestack.classify.images._synthetic import cartoon_face
from safestack.errors import InputError
from safestack.media import DecodedImage, decode_image, encode_png

PHOTOS = {s.name: s for s in SAMPLES}


def _decoded(img: Image.Image) -> DecodedImage:
    return decode_image(encode_png(img))


def _photo(name: str) -> DecodedImage:
    return _decoded(PHOTOS[name].load())


@pytest.fixture(scope="module")
def safety() -> ImageSafetyClassifier:
    return ImageSafetyClassifier()


@pytest.fixture(scope="module")
def sexual() -> SexualContentImageClassifier:
    return SexualContentImageClassifier()


def test_registered_and_typed() -> None:
    assert {"image-default", "image-sexual", "image-person"} <= set(classifier_names())
    for name in ("image-default", "image-sexual", "image-person"):
        clf = create_classifier(name)
        assert clf.input_kind == "image"


def test_packaged_head_is_hash_checked_and_small() -> None:
    heads, digest = packaged_photoreal_head()
    assert set(heads) == {"embedding", "combine"} and len(digest) == 64


def test_astronaut_is_a_photorealistic_adult(safety: ImageSafetyClassifier) -> None:
    found = safety.analyse(_photo("astronaut"))
    assert found.label == ADULT
    assert found.min_age_estimate is not None and found.min_age_estimate >= 25
    (verdict,) = safety.classify([_photo("astronaut")])
    assert verdict.label == ADULT and not verdict.flagged
    assert verdict.spec.args["child_age"] == 25.0


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea"])
def test_photos_without_people(safety: ImageSafetyClassifier, name: str) -> None:
    (verdict,) = safety.classify([_photo(name)])
    assert verdict.label == NO_PERSON
    assert verdict.scores["photorealism"] >= 0.3  # they are photographs
    assert not verdict.flagged


@pytest.mark.parametrize(
    "make",
    [lambda: cartoon_face(7), lambda: PHOTOS["colorwheel"].load(), lambda: PHOTOS["logo"].load()],
)
def test_drawings_have_no_photorealistic_person(safety: ImageSafetyClassifier, make) -> None:
    (verdict,) = safety.classify([_decoded(make())])
    assert verdict.label == NO_PERSON and not verdict.flagged


def test_benign_photos_score_below_the_sexual_threshold(
    sexual: SexualContentImageClassifier,
) -> None:
    verdicts = sexual.classify([_photo(n) for n in ("astronaut", "coffee", "retina", "chelsea")])
    assert all(not v.flagged and v.scores["sexual"] < 0.5 for v in verdicts)


def test_every_frame_of_an_animation_is_scored(sexual: SexualContentImageClassifier) -> None:
    photo = PHOTOS["retina"].load().resize((256, 256))
    blank = Image.new("RGB", (256, 256), (255, 255, 255))
    buffer = io.BytesIO()
    blank.save(buffer, format="GIF", save_all=True, append_images=[photo], duration=100)
    gif = decode_image(buffer.getvalue())
    assert gif.animated and len(gif.frames) == 2
    (animated,) = sexual.classify([gif])
    per_frame = sexual.classify([_decoded(f) for f in gif.frames])
    assert animated.scores["sexual"] == pytest.approx(max(v.scores["sexual"] for v in per_frame))
    assert per_frame[1].scores["sexual"] > per_frame[0].scores["sexual"]


def test_a_person_in_a_later_frame_counts(safety: ImageSafetyClassifier) -> None:
    face = PHOTOS["astronaut"].load()
    buffer = io.BytesIO()
    Image.new("RGB", face.size, (0, 0, 0)).save(
        buffer, format="GIF", save_all=True, append_images=[face], duration=100
    )
    assert safety.analyse(decode_image(buffer.getvalue())).label in (ADULT, CHILD)


def test_label_fold_errs_on_child() -> None:
    kw = {"photoreal": True, "faceless_bodies": 0, "child_age": 25.0}
    assert person_label(ages=[45.0, 30.0], **kw) == ADULT
    assert person_label(ages=[45.0, 14.0], **kw) == CHILD  # adult + child → child
    assert person_label(ages=[24.0], **kw) == CHILD  # under the recall-tuned threshold
    assert person_label(ages=[45.0, None], **kw) == CHILD  # a face too small to estimate
    assert person_label(ages=[], photoreal=True, faceless_bodies=1, child_age=25.0) == CHILD
    assert person_label(ages=[], **kw) == NO_PERSON
    assert person_label(ages=[8.0], photoreal=False, faceless_bodies=0, child_age=25) == NO_PERSON


def test_a_face_too_small_to_age_makes_a_photo_child(safety: ImageSafetyClassifier) -> None:
    small = _decoded(PHOTOS["astronaut"].load().resize((128, 128)))
    found = safety.analyse(small)
    assert found.photoreal and found.n_faces >= 1 and found.min_age_estimate is None
    assert found.label == CHILD


def test_combination_rule_on_real_findings() -> None:
    # An explicitly low sexual threshold makes a benign photo "sexual", to exercise the rule.
    low = ImageSafetyClassifier(sexual_threshold=0.0, minor_sexual_threshold=0.0)
    adult, small = low.classify(
        [_photo("astronaut"), _decoded(PHOTOS["astronaut"].load().resize((128, 128)))]
    )
    assert adult.label == ADULT and adult.categories == ["sexual"]
    assert adult.scores["sexual_minors"] == 0.0
    assert small.label == CHILD and small.categories[0] == "sexual_minors"
    assert "sexual" in small.categories
    assert small.scores["sexual_minors"] == small.scores["sexual"]
    assert low.spec.args["sexual_threshold"] == 0.0


def test_combine_respects_the_minor_threshold(safety: ImageSafetyClassifier) -> None:
    found = safety.analyse(_decoded(PHOTOS["astronaut"].load().resize((128, 128))))
    spec = safety.spec
    high = combine(found, spec, sexual_threshold=0.5, minor_sexual_threshold=0.9)
    assert not high.flagged and high.label == CHILD


def test_model_failure_fails_closed() -> None:
    clf = PersonImageClassifier()

    class Broken:
        def run(self, images: object) -> object:
            raise RuntimeError("onnxruntime exploded")

        def load(self) -> None: ...

    clf._analyser.backbone = Broken()  # type: ignore[assignment]
    (verdict,) = clf.classify([_photo("coffee")])
    assert verdict.flagged and verdict.error and verdict.categories == ["sexual_minors"]


def test_non_images_are_refused(sexual: SexualContentImageClassifier) -> None:
    with pytest.raises(InputError, match="DecodedImage"):
        sexual.classify(["a text"])
