"""Stamp → verify → lookup on a real SQLite registry: every signal, and what breaks it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from provenance_images import encode, photo, scene
from safestack.errors import StoreUnavailableError
from safestack.provenance import Provenance, ProvenanceConfig, Registry
from safestack.store import NewProvenanceRecord, Store


def _reencode(data: bytes, fmt: str = "PNG", **options: object) -> bytes:
    return encode(Image.open(io.BytesIO(data)).convert("RGB"), fmt, **options)


def test_a_stamped_image_is_signed_watermarked_and_registered(
    provenance: Provenance, store: Store
) -> None:
    stamped = provenance.stamp(
        encode(photo("astronaut")), model="painter-2", prompt="an astronaut", request_id="req_1"
    )
    record = stamped.record
    assert record.id.startswith("img_") and record.action == "created"
    assert record.watermark_method == "dwtDctSvd" and record.watermark_payload
    assert record.manifest_embedded and stamped.sidecar_manifest is None
    assert record.prompt is None  # only its hash, by default
    assert record.prompt_sha256 is not None and len(record.prompt_sha256) == 64
    assert store.find_provenance(record_id=record.id) == record
    report = provenance.verify(stamped.data)
    assert report.state == "valid" and report.record_id == record.id

    found = provenance.lookup(stamped.data)
    assert found.made_by_us and found.signal == "sha256" and found.confidence == 1.0
    assert found.record_id == record.id
    assert found.record is not None and found.record.model == "painter-2"
    assert {e.signal for e in found.evidence if e.matched} == {
        "sha256",
        "manifest",
        "watermark",
        "pdq",
    }
    assert "prompt" not in found.model_dump_json()


@pytest.mark.parametrize(
    ("name", "transform", "signals"),
    [
        ("strip metadata", lambda d: _reencode(d), {"watermark", "pdq"}),
        ("jpeg q75", lambda d: _reencode(d, "JPEG", quality=75), {"watermark", "pdq"}),
        ("resize 50%", lambda d: _resized(d, 0.5), {"pdq"}),
        ("rotate 90", lambda d: _rotated(d), {"pdq"}),
        ("colour jitter", lambda d: _jittered(d), {"watermark", "pdq"}),
    ],
)
def test_found_after_the_metadata_is_gone(
    provenance: Provenance, name: str, transform: object, signals: set[str]
) -> None:
    stamped = provenance.stamp(encode(scene(sum(map(ord, name)))), model="m")
    changed = transform(stamped.data)  # type: ignore[operator]
    found = provenance.lookup(changed)
    assert found.made_by_us, name
    assert found.record_id == stamped.record.id, name
    assert found.signal in signals, (name, found.evidence)
    assert 0.5 < found.confidence < 1.0
    assert found.manifest.state == "none"


def test_an_unrelated_image_is_not_ours(provenance: Provenance) -> None:
    provenance.stamp(encode(photo("astronaut")), model="m")
    found = provenance.lookup(encode(photo("rocket")))
    assert not found.made_by_us
    assert found.signal is None and found.record_id is None and found.confidence == 0.0
    assert [e.signal for e in found.evidence] == ["sha256", "manifest", "watermark", "pdq"]
    assert not any(e.matched for e in found.evidence)


def test_our_manifest_on_changed_pixels_still_names_the_record(provenance: Provenance) -> None:
    stamped = provenance.stamp(encode(photo("chelsea")), model="m")
    tampered = bytearray(stamped.data)
    tampered[-200] ^= 0xFF
    found = provenance.lookup(bytes(tampered))
    manifest = next(e for e in found.evidence if e.signal == "manifest")
    assert manifest.matched and manifest.record_id == stamped.record.id
    assert manifest.confidence == pytest.approx(0.7)
    assert "changed after release" in manifest.detail
    assert found.manifest.state == "invalid"
    assert found.made_by_us and found.signal == "manifest"
    # The flipped byte broke the compressed pixels: those signals say so instead of failing.
    pixel_signals = [e for e in found.evidence if e.signal in ("watermark", "pdq")]
    assert all("cannot be decoded" in e.detail for e in pixel_signals)


def test_edits_small_images_animations_and_transparency(provenance: Provenance) -> None:
    upload = provenance.stamp(encode(photo("chelsea")), model="m")
    edit = provenance.stamp(encode(photo("chelsea"), "JPEG"), model="m", parent=upload.data)
    assert edit.record.action == "edited"
    assert provenance.verify(edit.data).actions == ["c2pa.opened", "c2pa.edited"]

    small = provenance.stamp(encode(photo("astronaut")[:120, :160]), model="m")
    assert small.record.watermark_method is None  # too small to carry one
    assert provenance.lookup(small.data).signal == "sha256"

    frames = [Image.fromarray(photo("astronaut")[::2, ::2]) for _ in range(2)]
    frames[1] = frames[1].rotate(10)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    animated = provenance.stamp(buffer.getvalue(), model="m")
    assert animated.record.watermark_method is None and animated.record.manifest_embedded
    assert provenance.verify(animated.data).state == "valid"

    rgba = np.dstack([photo("coffee"), np.full((400, 600), 128, dtype=np.uint8)])
    transparent = provenance.stamp(encode(rgba), model="m")
    stamped_image = Image.open(io.BytesIO(transparent.data))
    assert stamped_image.mode == "RGBA"
    assert np.array_equal(np.asarray(stamped_image)[..., 3], rgba[..., 3])


def test_bmp_gets_a_sidecar_and_lookup_uses_it(provenance: Provenance) -> None:
    stamped = provenance.stamp(encode(photo("coffee"), "BMP"), model="m")
    assert not stamped.record.manifest_embedded and stamped.sidecar_manifest
    assert provenance.verify(stamped.data, sidecar=stamped.sidecar_manifest).state == "valid"
    assert provenance.verify(stamped.data).state == "none"


def test_prompts_are_kept_only_when_configured(provenance_dir: Path, store: Store) -> None:
    keeping = Provenance.from_config(ProvenanceConfig(store_prompts=True, watermark="none"), store)
    stamped = keeping.stamp(encode(photo("rocket")), prompt="a rocket at dawn")
    assert stamped.record.prompt == "a rocket at dawn"
    assert stamped.record.watermark_method is None


def test_another_process_finds_what_this_one_registered(
    provenance: Provenance, provenance_dir: Path, store: Store
) -> None:
    """Two registries on one database: lookups read rows registered by the other at once."""
    other = Provenance.from_config(ProvenanceConfig(), Store(store.url))
    other.lookup(encode(photo("rocket")))  # loads its indexes before the new row exists
    stamped = provenance.stamp(encode(photo("immunohistochemistry")), model="m")
    found = other.lookup(_reencode(stamped.data, "JPEG", quality=85))
    assert found.made_by_us and found.record_id == stamped.record.id
    other.registry.store.close()


def test_nothing_is_released_when_the_registry_is_down(provenance: Provenance) -> None:
    down = Provenance(
        Registry(Store("postgresql://safestack@127.0.0.1:9/none", connect_timeout_s=1)),
        provenance.signer,
        provenance.watermarker,
    )
    with pytest.raises(StoreUnavailableError):
        down.stamp(encode(photo("coffee")), model="m")


def test_the_pdq_index_is_rebuilt_as_the_registry_grows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the tail limit, records move into a PDQIndex; every one is still found."""
    import safestack.provenance._registry as registry_module

    monkeypatch.setattr(registry_module, "_TAIL_LIMIT", 3)
    registry = Registry(store)
    registry.refresh()
    rng = np.random.default_rng(7)
    values = [rng.bytes(32).hex() for _ in range(8)]
    for number, value in enumerate(values):
        registry.register(
            NewProvenanceRecord(
                id=f"img_rebuild_{number}",
                media_type="image/png",
                width=1,
                height=1,
                sha256=f"{number:064x}",
                pdq=value,
                pdq_quality=100,
                manifest_embedded=False,
            )
        )

    def all_found() -> bool:
        for number, value in enumerate(values):
            flipped = f"{int(value, 16) ^ 0b101:064x}"
            hit = registry.nearest_pdq([flipped])
            assert hit is not None and hit[1] == 2
            record = registry.by_seq(hit[0])
            assert record is not None and record.id == f"img_rebuild_{number}"
        return True

    assert all_found()  # while the index is being rebuilt in the background
    if registry._folding is not None:
        registry._folding.join(timeout=30)
    assert registry._pdq_index is not None and len(registry._tail_seqs) <= 3
    assert all_found()


def _resized(data: bytes, factor: float) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    size = (int(image.width * factor), int(image.height * factor))
    return encode(image.resize(size, Image.Resampling.BILINEAR))


def _rotated(data: bytes) -> bytes:
    return encode(Image.open(io.BytesIO(data)).convert("RGB").rotate(90, expand=True))


def _jittered(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = ImageEnhance.Brightness(image).enhance(1.12)
    image = ImageEnhance.Contrast(image).enhance(0.9)
    return encode(ImageEnhance.Color(image).enhance(1.1), "JPEG", quality=90)


def test_lookup_refuses_non_images_and_animations_nobody_should_decode(
    provenance: Provenance,
) -> None:
    from safestack.errors import ImageError

    with pytest.raises(ImageError) as not_an_image:
        provenance.lookup(b"GIF? no, plain text")
    assert not_an_image.value.code == "image_unsupported"
    frames = [Image.new("RGB", (4, 4), (i, 0, 0)) for i in range(65)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError) as endless:
        provenance.lookup(buffer.getvalue())
    assert endless.value.code == "image_too_many_frames"
