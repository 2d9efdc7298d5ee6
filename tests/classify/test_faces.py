"""Opt-out face matching with the real dlib models on real photographs.

The models come from the optional ``faces`` extra. Without it these tests fail, loudly, unless
``SAFESTACK_ALLOW_MISSING_FACES=1`` says that a machine without the extra is expected.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

if (
    os.environ.get("SAFESTACK_ALLOW_MISSING_FACES") == "1"
    and importlib.util.find_spec("face_recognition_models") is None
):
    pytest.skip(
        "face_recognition_models is not installed (SAFESTACK_ALLOW_MISSING_FACES=1)",
        allow_module_level=True,
    )

from skimage import data

from safestack.classify import create_classifier
from safestack.classify.faces import (
    DESCRIPTOR_SIZE,
    FACE_MODELS,
    FaceEmbedder,
    OptOutFaceClassifier,
    OptOutFaceMatcher,
)
from safestack.classify.faces._embedder import _verified
from safestack.classify.faces._measure import TRANSFORMS, lfw_faces
from safestack.errors import ArtifactError, InputError, RecordNotFoundError
from safestack.gateway import GatewayConfig, create_app
from safestack.media import DecodedImage, decode_image, encode_png
from safestack.store import Store

ADMIN_KEY = "faces-admin-key-" + "0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _png(pixels: np.ndarray) -> bytes:
    return encode_png(Image.fromarray(pixels))


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="module")
def astronaut() -> DecodedImage:
    """Eileen Collins, NASA photograph (public domain), shipped with scikit-image."""
    return decode_image(_png(data.astronaut()))


@pytest.fixture(scope="module")
def reference(embedder: FaceEmbedder, astronaut: DecodedImage) -> list[float]:
    faces = embedder.faces(astronaut)
    assert len(faces) == 1
    assert faces[0].descriptor.shape == (DESCRIPTOR_SIZE,)
    return [float(v) for v in faces[0].descriptor]


@pytest.fixture(scope="module")
def matcher(embedder: FaceEmbedder, reference: list[float]) -> OptOutFaceMatcher:
    return OptOutFaceMatcher([("opt_astro", "Astronaut", [reference])], embedder=embedder)


def test_the_astronauts_face_is_found_where_it_is(embedder: FaceEmbedder) -> None:
    (face,) = embedder.frame_faces(np.ascontiguousarray(data.astronaut()))
    left, top, right, bottom = face.box
    assert 150 < left < 200 and 60 < top < 110 and right - left > 60 and bottom - top > 60
    assert face.score > 0


@pytest.mark.parametrize(
    "edit",
    ["jpeg_q50", "resize_50pct", "crop_face_region", "rotate_5deg", "brighter_1.4", "grayscale"],
)
def test_edited_copies_of_the_reference_match(
    matcher: OptOutFaceMatcher, astronaut: DecodedImage, edit: str
) -> None:
    edited = decode_image(encode_png(TRANSFORMS[edit](astronaut.image)))
    match = matcher.match(edited)
    assert match is not None
    assert match.opt_out_id == "opt_astro" and match.name == "Astronaut"
    assert match.distance < 0.3  # far inside the 0.5 threshold: edits barely move a descriptor


def test_other_peoples_faces_do_not_match(
    matcher: OptOutFaceMatcher, embedder: FaceEmbedder
) -> None:
    faces = [face for pixels in lfw_faces()[:12] for face in embedder.frame_faces(pixels)]
    assert len(faces) >= 8  # LFW crops (enlarged): the detector finds most of them
    best, distance = matcher.nearest(faces)
    assert best is None
    assert distance is not None and distance > matcher.threshold


@pytest.mark.parametrize("name", ["camera", "coffee", "rocket"])
def test_images_without_faces_do_not_match(matcher: OptOutFaceMatcher, name: str) -> None:
    pixels = getattr(data, name)()
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    image = decode_image(_png(np.ascontiguousarray(pixels[..., :3])))
    assert matcher.embedder.faces(image) == []
    assert matcher.match(image) is None


def test_a_face_in_any_frame_of_an_animation_matches(
    matcher: OptOutFaceMatcher, astronaut: DecodedImage
) -> None:
    blank = Image.new("RGB", astronaut.size, "white")
    buffer = io.BytesIO()
    blank.save(buffer, format="GIF", save_all=True, append_images=[blank, astronaut.image])
    animation = decode_image(buffer.getvalue())
    assert animation.animated
    match = matcher.match(animation)
    assert match is not None and match.frame == len(animation.frames) - 1


def test_a_tampered_model_file_is_refused_with_the_extra_named(tmp_path: Path) -> None:
    model = FACE_MODELS[0]
    (tmp_path / model.filename).write_bytes(b"not the model")
    with pytest.raises(ArtifactError, match=r"safestack\[faces\]"):
        _verified(tmp_path, model)
    with pytest.raises(ArtifactError, match=r"safestack\[faces\]"):
        _verified(tmp_path, FACE_MODELS[1])  # missing


# -- the store -----------------------------------------------------------------------------------


def test_the_store_keeps_descriptors_and_audits_without_them(
    database_url: str, reference: list[float]
) -> None:
    with Store(database_url) as store:
        store.migrate()
        person = store.add_opt_out(name="Astronaut", kind="public_figure", actor="test")
        assert person.n_faces == 0
        assert store.list_opt_out_faces() == []
        updated = store.add_opt_out_face(person.id, reference, actor="test")
        assert updated.n_faces == 1
        ((opt_out_id, name, faces),) = store.list_opt_out_faces()
        assert (opt_out_id, name) == (person.id, "Astronaut")
        assert np.allclose(faces[0], reference, atol=1e-6)
        (entry,) = store.list_audit(action="opt_out.add_face")
        assert entry.target == person.id and entry.details["faces"] == 1
        assert not any(isinstance(v, list) for v in entry.details.values())
        with pytest.raises(InputError, match="finite"):
            store.add_opt_out_face(person.id, [float("nan")] * DESCRIPTOR_SIZE, actor="test")
        with pytest.raises(InputError, match="does not fit"):
            store.add_opt_out_face(person.id, [0.0] * 64, actor="test")
        with pytest.raises(RecordNotFoundError):
            store.add_opt_out_face("opt_missing", reference, actor="test")
        store.remove_opt_out(person.id, actor="test")
        assert store.list_opt_out_faces() == []


def test_the_classifier_sees_a_face_added_through_another_store(
    tmp_path: Path, embedder: FaceEmbedder, astronaut: DecodedImage, reference: list[float]
) -> None:
    url = f"sqlite:///{tmp_path}/faces.db"
    with Store(url) as admin_store, Store(url) as gateway_store:
        admin_store.migrate()
        person = admin_store.add_opt_out(name="Astronaut", kind="public_figure", actor="test")
        classifier = OptOutFaceClassifier.from_store(
            gateway_store, embedder=embedder, max_age_s=None
        )
        assert classifier.input_kind == "image"
        (before,) = classifier.classify([astronaut])
        assert not before.flagged
        admin_store.add_opt_out_face(person.id, reference, actor="test")
        (stale,) = classifier.classify([astronaut])
        assert not stale.flagged  # no refresh yet: the references are read once
        classifier.refresh()
        (verdict,) = classifier.classify([astronaut])
        assert verdict.flagged and verdict.categories == ["privacy"]
        assert verdict.label == "opted_out_person"
        assert verdict.scores["privacy"] > 0.9  # the same photograph: distance ~0
        assert verdict.rationale is not None and person.id in verdict.rationale
        assert "Astronaut" not in verdict.rationale  # who opted out is not revealed
        assert verdict.spec.name == "opt-out-faces"
        assert verdict.spec.artifact_sha256 == FACE_MODELS[-1].sha256
        by_name = create_classifier("opt-out-faces", store=gateway_store, max_age_s=0.0)
        (fresh,) = by_name.classify([astronaut])  # type: ignore[list-item]
        assert fresh.flagged


# -- the admin route -----------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        GatewayConfig(database_url=f"sqlite:///{tmp_path}/gateway.db"), admin_key=ADMIN_KEY
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _opt_out(client: TestClient) -> str:
    created = client.post(
        "/admin/opt-outs", json={"name": "Astronaut", "kind": "public_figure"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    opt_out_id: str = created.json()["id"]
    return opt_out_id


def test_the_admin_route_stores_a_descriptor_not_the_photo(
    client: TestClient, astronaut: DecodedImage, tmp_path: Path
) -> None:
    opt_out_id = _opt_out(client)
    raw = client.post(
        f"/admin/opt-outs/{opt_out_id}/faces",
        content=astronaut.data,
        headers={**ADMIN, "Content-Type": "image/png", "X-Safestack-Actor": "reviewer"},
    )
    assert raw.status_code == 201, raw.text
    assert raw.json()["n_faces"] == 1
    form = client.post(
        f"/admin/opt-outs/{opt_out_id}/faces",
        files={"image": ("ref.jpg", _jpeg(astronaut.image), "image/jpeg")},
        headers=ADMIN,
    )
    assert form.status_code == 201, form.text
    assert form.json()["n_faces"] == 2
    audit = client.get("/admin/audit", params={"action": "opt_out.add_face"}, headers=ADMIN)
    entries = audit.json()
    assert [e["details"]["faces"] for e in entries] == [2, 1]
    assert "reviewer" in entries[1]["actor"]
    with Store(f"sqlite:///{tmp_path}/gateway.db") as store:
        ((_, _, faces),) = store.list_opt_out_faces()
    assert len(faces) == 2 and all(len(face) == DESCRIPTOR_SIZE for face in faces)
    text = json.dumps(entries)
    for number in faces[0][:8]:  # no descriptor number is written to the audit log
        assert f"{number:.5f}"[:7] not in text


def test_a_photo_without_exactly_one_face_is_refused(client: TestClient) -> None:
    opt_out_id = _opt_out(client)
    url = f"/admin/opt-outs/{opt_out_id}/faces"
    no_face = client.post(url, content=_png(data.coffee()), headers=ADMIN)
    assert no_face.status_code == 400, no_face.text
    assert no_face.json()["error"]["code"] == "no_face"
    assert "exactly one face" in no_face.json()["error"]["message"]
    astronaut = data.astronaut()
    two = np.concatenate([astronaut, astronaut], axis=1)
    several = client.post(url, content=_png(two), headers=ADMIN)
    assert several.status_code == 400, several.text
    assert several.json()["error"]["code"] == "several_faces"
    broken = client.post(url, content=b"\x89PNG not really", headers=ADMIN)
    assert broken.status_code == 400 and broken.json()["error"]["code"].startswith("image_")
    empty = client.post(url, content=b"", headers=ADMIN)
    assert empty.status_code == 400
    unknown = client.post(
        "/admin/opt-outs/opt_missing/faces", content=_png(astronaut), headers=ADMIN
    )
    assert unknown.status_code == 404
    listed = client.get("/admin/opt-outs", headers=ADMIN).json()
    assert [o["n_faces"] for o in listed] == [0]
    assert client.post(url, content=_png(astronaut)).status_code == 401


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
