"""The image endpoints end to end: real ``safestack serve`` processes, the real ``openai`` client.

Each gateway serves the offline sample-photos upstream (public-domain photographs) on SQLite and
on PostgreSQL, with a report receiver on loopback, so a known-bad upload is followed from the
upload to the ban and the signed webhook.
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from _postgres import fresh_database
from gateway_process import RunningGateway, start_gateway, stop_gateway
from loopback import FakeEndpoint, serving
from safestack.hashing import hash_bytes, verify_signature

_SECRET_ENV = "SAFESTACK_TEST_REPORT_SECRET"
_SECRET = "report-secret-" + "9" * 20


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeEndpoint]:
    """Where reports of known-bad uploads are delivered."""
    with serving() as fake:
        fake.always({"received": True})
        yield fake


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: FakeEndpoint,
) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp(f"images-{request.param}")
    config: dict[str, Any] = {
        "image_dir": str(tmp / "images"),
        "max_upload_bytes": 4 * 1024 * 1024,
        "reports": {"url": f"{receiver.base_url}/reports", "secret_env": _SECRET_ENV},
    }
    os.environ[_SECRET_ENV] = _SECRET  # inherited by the gateway process only
    try:
        if request.param == "sqlite":
            running = start_gateway(tmp, database_url=f"sqlite:///{tmp}/g.db", config=config)
            try:
                yield running
            finally:
                stop_gateway(running)
            return
        server: str = request.getfixturevalue("postgres_server")
        with fresh_database(server) as url:
            running = start_gateway(tmp, database_url=url, config=config)
            try:
                yield running
            finally:
                stop_gateway(running)
    finally:
        os.environ.pop(_SECRET_ENV, None)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _textured(seed: int, size: int = 256) -> Image.Image:
    """A synthetic image with real structure (PDQ quality well above 50)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.sin(x * rng.uniform(4, 12) + y * rng.uniform(2, 9)) * 80 + 128
    blobs = rng.normal(0, 25, (size // 16, size // 16)).repeat(16, 0).repeat(16, 1)
    channels = [base + blobs * k for k in (1.0, -0.6, 0.3)]
    return Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8))


def _post_edit(gateway: RunningGateway, key: str, data: bytes, **fields: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.v1}/images/edits",
        headers={"Authorization": f"Bearer {key}"},
        files={"image": ("upload.png", data, "image/png")},
        data={"prompt": "make the sky purple", **fields},
        timeout=60,
    )


def test_generations_answer_with_real_photographs(gateway: RunningGateway) -> None:
    client = gateway.client(gateway.new_key())
    result = client.images.generate(prompt="a photo of a cat on a sofa", n=2)
    assert len(result.data) == 2
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or "")))
    assert image.size == (451, 300)  # scikit-image's 'chelsea', the cat
    extension = result.model_extra["safestack"] if result.model_extra else None
    assert extension is not None and extension["status"] == "answered"


def test_url_responses_are_signed_links_that_need_no_key(gateway: RunningGateway) -> None:
    client = gateway.client(gateway.new_key())
    result = client.images.generate(prompt="a cup of coffee", response_format="url")
    url = result.data[0].url or ""
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (600, 400)
    forged = url.replace("signature=", "signature=0")
    assert httpx.get(forged, timeout=10).status_code == 404
    stretched = url.replace("expires=", "expires=9")
    assert httpx.get(stretched, timeout=10).status_code == 404


def test_a_refused_prompt_is_a_content_policy_violation(gateway: RunningGateway) -> None:
    client = gateway.client(gateway.new_key())
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(prompt="a castle at dusk in the style of Greg Rutkowski")
    assert info.value.code == "content_policy_violation"
    body = info.value.response.json()
    assert body["safestack"]["layer"] == "input"
    assert body["safestack"]["categories"] == ["intellectual_property"]
    assert "Greg Rutkowski" in body["error"]["message"]
    # A deceased artist's style is allowed.
    assert client.images.generate(prompt="a castle at dusk in the style of Van Gogh").data


def test_an_opt_out_added_through_the_admin_api_is_enforced(gateway: RunningGateway) -> None:
    created = gateway.admin(
        "POST",
        "/admin/opt-outs",
        json={"name": "Quentin Exampleton", "kind": "public_figure", "aliases": ["Q. Exampleton"]},
    )
    assert created.status_code == 201, created.text
    client = gateway.client(gateway.new_key())
    deadline = time.monotonic() + 10  # re-read at most every 2 s
    while True:
        try:
            client.images.generate(prompt="Q. Exampleton waving at a crowd, photo")
        except openai.BadRequestError as exc:
            assert exc.response.json()["safestack"]["categories"] == ["privacy"]
            break
        assert time.monotonic() < deadline, "the opt-out was not enforced"
        time.sleep(0.5)


def test_edits_with_the_real_client(gateway: RunningGateway) -> None:
    client = gateway.client(gateway.new_key())
    upload = _png(_textured(1))
    result = client.images.edit(image=("photo.png", upload, "image/png"), prompt="add a moon")
    edited = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or "")))
    assert edited.size == (256, 256)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"this is not an image", 400, "image_unsupported"),
        (_png(_textured(9))[:20_000], 400, "image_unreadable"),
        (b"\x00" * (5 * 1024 * 1024), 413, "image_too_large"),
    ],
    ids=["garbage", "truncated", "over-max-upload"],
)
def test_bad_uploads_get_clear_4xx(
    gateway: RunningGateway, data: bytes, status: int, code: str
) -> None:
    response = _post_edit(gateway, gateway.new_key(), data)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_decompression_bomb_is_refused_from_its_header(gateway: RunningGateway) -> None:
    bomb = _png(Image.new("1", (10_000, 10_000)))  # 100 megapixels in a few kilobytes
    response = _post_edit(gateway, gateway.new_key(), bomb)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "image_too_many_pixels"


def test_a_50_mb_upload_is_refused_before_it_is_read(gateway: RunningGateway) -> None:
    response = _post_edit(gateway, gateway.new_key(), b"\x00" * (50 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_other_formats_and_animations(gateway: RunningGateway) -> None:
    key = gateway.new_key()
    bmp = io.BytesIO()
    _textured(2, 64).save(bmp, format="BMP")
    refused = _post_edit(gateway, key, bmp.getvalue())
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "image_unsupported"
    frames = [_textured(seed, 64) for seed in (3, 4, 5)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=40)
    assert _post_edit(gateway, key, gif.getvalue()).status_code == 200


# -- known-bad media: reject, report (signed webhook), ban -------------------------------------


def _jpeg(image: Image.Image, quality: int = 80) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _bank(gateway: RunningGateway, name: str, image: Image.Image, **actions: bool) -> str:
    created = gateway.admin(
        "POST",
        "/admin/hash-banks",
        json={"name": name, "actions": actions} if actions else {"name": name},
    )
    assert created.status_code == 201, created.text
    bank_id: str = created.json()["id"]
    hashes = hash_bytes(_png(image))
    added = gateway.admin(
        "POST",
        f"/admin/hash-banks/{bank_id}/hashes",
        json={"hashes": [{"hash": hashes.pdq, "type": "pdq", "quality": hashes.quality}]},
    )
    assert added.status_code == 200, added.text
    assert added.json()["added"] == {"pdq": 1}
    return bank_id


def _account(gateway: RunningGateway) -> tuple[str, str]:
    created = gateway.admin("POST", "/admin/keys", json={"audience": "adult"})
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["account_id"]


def test_a_known_bad_upload_is_rejected_reported_and_banned(
    gateway: RunningGateway, receiver: FakeEndpoint
) -> None:
    known_bad = _textured(100)
    _bank(gateway, f"csam-{gateway.database_url[:6]}", known_bad)
    key, account_id = _account(gateway)

    # Not the file that was banked: a JPEG re-encode of a resized copy (PDQ still matches).
    copy = _jpeg(known_bad.resize((200, 200)), quality=75)
    refused = _post_edit(gateway, key, copy)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "content_policy_violation"
    assert refused.json()["safestack"]["categories"] == ["sexual_minors"]
    assert "bank" not in refused.json()["error"]["message"]  # no hints for evasion

    after = _post_edit(gateway, key, _png(_textured(7)))
    assert after.status_code == 403 and after.json()["error"]["reason"] == "known_bad_media"

    reports = gateway.admin("GET", "/admin/reports").json()
    mine = [r for r in reports if r["account_id"] == account_id]
    assert len(mine) == 1 and mine[0]["kind"] == "hash_match"
    exported = gateway.admin("GET", f"/admin/reports/{mine[0]['id']}/export")
    assert exported.status_code == 200, exported.text

    deadline = time.monotonic() + 20
    while True:
        delivered = [
            r for r in receiver.requests if r.headers.get("x-safestack-report-id") == mine[0]["id"]
        ]
        if delivered:
            break
        assert time.monotonic() < deadline, "the report never reached the receiver"
        time.sleep(0.2)
    sent = delivered[0]
    assert verify_signature(
        _SECRET,
        sent.headers["x-safestack-timestamp"],
        sent.body,
        sent.headers["x-safestack-signature"],
    )
    assert _SECRET.encode() not in sent.body


def test_unrelated_uploads_pass_and_report_only_banks_do_not_reject(
    gateway: RunningGateway,
) -> None:
    watched = _textured(200)
    _bank(
        gateway, f"watch-{gateway.database_url[:6]}", watched, reject=False, report=True, ban=False
    )
    key, account_id = _account(gateway)
    assert _post_edit(gateway, key, _png(_textured(201))).status_code == 200
    passed = _post_edit(gateway, key, _png(watched))
    assert passed.status_code == 200, passed.text  # reported, not rejected, not banned
    assert _post_edit(gateway, key, _png(_textured(202))).status_code == 200
    reports = gateway.admin("GET", "/admin/reports").json()
    assert [r["kind"] for r in reports if r["account_id"] == account_id] == ["hash_match"]
