"""C2PA manifests: sign → read back, tampering, stripping, corruption, sidecars, edits."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from provenance_images import encode, photo
from safestack.errors import ImageError
from safestack.provenance import (
    ManifestSigner,
    SigningCredentials,
    embeddable,
    read_manifest,
)

_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> SigningCredentials:
    return SigningCredentials.development_default(tmp_path_factory.mktemp("dev"))


@pytest.fixture(scope="module")
def signer(credentials: SigningCredentials) -> ManifestSigner:
    return ManifestSigner(credentials, generator_version="9.9")


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_round_trip_with_a_fresh_development_certificate(
    signer: ManifestSigner, credentials: SigningCredentials, fmt: str, media_type: str
) -> None:
    signed = signer.sign(
        encode(photo("coffee"), fmt), media_type, record_id="img_abc", model="painter-2"
    )
    assert signed.embedded and signed.label.startswith("urn:c2pa:")
    public = read_manifest(signed.data)
    assert public.state == "untrusted"  # nobody else trusts the development CA
    assert "signingCredential.untrusted" in public.failures
    own = read_manifest(signed.data, trust_anchors_pem=credentials.trust_anchors_pem)
    assert own.state == "valid" and own.failures == []
    assert own.label == signed.label
    assert own.actions == ["c2pa.created"]
    assert own.digital_source_type == _TRAINED
    assert own.record_id == "img_abc"
    assert own.generator == "safestack 9.9"
    assert own.signer["common_name"] == "safestack development signer"
    # The signed file is still the same picture.
    assert Image.open(io.BytesIO(signed.data)).size == (600, 400)


def test_changed_pixels_make_the_manifest_invalid(
    signer: ManifestSigner, credentials: SigningCredentials
) -> None:
    signed = signer.sign(encode(photo("coffee")), "image/png", record_id="img_t", model=None)
    tampered = bytearray(signed.data)
    tampered[-200] ^= 0xFF  # inside the last image-data chunk, far from the manifest
    report = read_manifest(bytes(tampered), trust_anchors_pem=credentials.trust_anchors_pem)
    assert report.state == "invalid"
    assert "assertion.dataHash.mismatch" in report.failures
    assert report.record_id == "img_t"  # still says where it came from


def test_stripped_metadata_leaves_no_manifest(signer: ManifestSigner) -> None:
    signed = signer.sign(encode(photo("coffee")), "image/png", record_id="img_s", model=None)
    resaved = encode(Image.open(io.BytesIO(signed.data)))
    report = read_manifest(resaved)
    assert report.state == "none" and report.label is None and report.embedded is None


def test_a_corrupted_manifest_is_invalid_not_a_crash(signer: ManifestSigner) -> None:
    signed = signer.sign(encode(photo("coffee")), "image/png", record_id="img_c", model=None)
    data = bytearray(signed.data)
    start = data.find(b"jumb")
    assert start > 0
    for offset in range(start + 60, start + 120):
        data[offset] ^= 0x5A
    report = read_manifest(bytes(data))
    assert report.state == "invalid"
    assert report.error or report.failures


def test_not_an_image_is_an_input_error() -> None:
    with pytest.raises(ImageError, match="not a readable image"):
        read_manifest(b"%PDF-1.4 not an image at all")


def test_formats_c2pa_cannot_embed_get_a_sidecar(
    signer: ManifestSigner, credentials: SigningCredentials
) -> None:
    assert not embeddable("image/bmp") and embeddable("image/png")
    original = encode(photo("coffee"), "BMP")
    signed = signer.sign(original, "image/bmp", record_id="img_b", model=None)
    assert not signed.embedded
    assert signed.data == original  # the file is left as it is
    anchors = credentials.trust_anchors_pem
    with_sidecar = read_manifest(signed.data, sidecar=signed.manifest, trust_anchors_pem=anchors)
    assert with_sidecar.state == "valid" and with_sidecar.embedded is False
    assert with_sidecar.record_id == "img_b"
    assert read_manifest(signed.data).state == "none"
    other = encode(photo("chelsea"), "BMP")
    assert read_manifest(other, sidecar=signed.manifest).state == "invalid"


def test_an_edit_names_the_upload_as_its_parent(
    signer: ManifestSigner, credentials: SigningCredentials, tmp_path: Path
) -> None:
    upload = signer.sign(encode(photo("chelsea")), "image/png", record_id="img_p", model="m")
    edited = signer.sign(
        encode(photo("chelsea"), "JPEG"),
        "image/jpeg",
        record_id="img_e",
        model="m",
        parent=upload.data,
        parent_type="image/png",
    )
    report = read_manifest(edited.data, trust_anchors_pem=credentials.trust_anchors_pem)
    assert report.state == "valid"
    assert report.actions == ["c2pa.opened", "c2pa.edited"]
    assert report.digital_source_type is not None
    assert report.digital_source_type.endswith("compositeWithTrainedAlgorithmicMedia")
    assert report.ingredients == 1
    # An upload without a manifest is an ingredient too (its hash, no manifest of its own).
    plain = signer.sign(
        encode(photo("rocket")),
        "image/png",
        record_id="img_q",
        model="m",
        parent=encode(photo("chelsea")),
        parent_type="image/png",
    )
    assert read_manifest(plain.data).ingredients == 1
