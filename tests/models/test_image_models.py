"""Image models: an OpenAI-compatible images upstream on loopback, and the offline sample."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from PIL import Image

from loopback import FakeEndpoint, serving
from safestack.errors import InputError, ModelError
from safestack.media import decode_image, encode_png
from safestack.models import OpenAICompatibleImageModel, SamplePhotosModel


def _png(colour: tuple[int, int, int] = (10, 200, 30), size: int = 32) -> bytes:
    return encode_png(Image.new("RGB", (size, size), colour))


@pytest.fixture
def upstream() -> Iterator[FakeEndpoint]:
    with serving() as fake:
        yield fake


def test_generate_sends_the_openai_request_and_decodes_b64(upstream: FakeEndpoint) -> None:
    image = _png()
    upstream.reply({"created": 1, "data": [{"b64_json": base64.b64encode(image).decode()}] * 2})
    with OpenAICompatibleImageModel(upstream.base_url, "img-1", api_key="sk-upstream") as model:
        out = model.generate("a red barn", n=2, size="256x256")
    assert out == [image, image]
    sent = upstream.requests[0]
    assert sent.path.endswith("/images/generations")
    assert sent.json() == {
        "model": "img-1",
        "prompt": "a red barn",
        "n": 2,
        "response_format": "b64_json",
        "size": "256x256",
    }
    assert sent.headers["authorization"] == "Bearer sk-upstream"


def test_edit_is_multipart_with_the_image_and_mask(upstream: FakeEndpoint) -> None:
    image, mask = _png(), _png((0, 0, 0))
    upstream.reply({"data": [{"b64_json": base64.b64encode(image).decode()}]})
    with OpenAICompatibleImageModel(upstream.base_url, "img-1") as model:
        assert model.edit(image, "make it night", mask=mask) == [image]
    sent = upstream.requests[0]
    assert sent.path.endswith("/images/edits")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert b'name="prompt"' in sent.body and b"make it night" in sent.body
    assert b'name="image"; filename="image.png"' in sent.body
    assert b'name="mask"' in sent.body and image in sent.body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [{"url": "http://elsewhere.example/x.png"}]}, "URL answers are not followed"),
        ({"data": [{"b64_json": "%%% not base64"}]}, "not base64"),
        ({"data": []}, "not an images response"),
        ({"choices": []}, "not an images response"),
    ],
)
def test_answers_out_of_contract_are_model_errors(
    upstream: FakeEndpoint, body: object, message: str
) -> None:
    upstream.reply(body)
    with (
        OpenAICompatibleImageModel(upstream.base_url, "img-1", max_retries=0) as model,
        pytest.raises(ModelError, match=message),
    ):
        model.generate("a cat")


def test_upstream_errors_never_echo_the_key(upstream: FakeEndpoint) -> None:
    upstream.always({"error": {"message": "bad key sk-secret-123"}}, status=401)
    with (
        OpenAICompatibleImageModel(upstream.base_url, "img-1", api_key="sk-secret-123") as model,
        pytest.raises(ModelError) as info,
    ):
        model.generate("a cat")
    assert "HTTP 401" in str(info.value) and "sk-secret-123" not in str(info.value)


def test_the_sample_model_returns_real_photographs_by_keyword() -> None:
    model = SamplePhotosModel()
    assert model.pick("a cat asleep on a sofa") == "chelsea"
    assert model.pick("portrait of a woman") == "astronaut"
    assert model.pick("something abstract") == model.pick("something abstract")
    [cat] = model.generate("a cat")
    decoded = decode_image(cat)
    assert decoded.format == "PNG" and decoded.size == (451, 300)
    assert model.spec.name == "safestack-sample-photos"
    assert "CC0" in model.spec.args["licences"]["chelsea"]


def test_the_sample_model_edits_by_mirroring_and_checks_n() -> None:
    model = SamplePhotosModel()
    original = Image.new("RGB", (4, 2), (0, 0, 0))
    original.putpixel((0, 0), (255, 255, 255))
    [edited] = model.edit(encode_png(original), "flip it")
    with Image.open(io.BytesIO(edited)) as image:
        assert image.getpixel((3, 0)) == (255, 255, 255)
    with pytest.raises(InputError, match="n must be"):
        model.generate("a cat", n=11)
    with pytest.raises(InputError, match="unknown sample photo"):
        SamplePhotosModel(photos=["lena"])
