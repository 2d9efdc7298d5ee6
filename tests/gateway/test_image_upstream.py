"""An OpenAI-compatible images upstream behind the gateway: requests forwarded, outputs checked."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from loopback import FakeEndpoint, Received, serving
from safestack.gateway import GatewayConfig, UpstreamConfig, create_app
from safestack.provenance import read_manifest

ADMIN = "upstream-test-admin-key-0123456789"


def _png(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def upstream() -> Iterator[FakeEndpoint]:
    with serving() as fake:
        yield fake


@pytest.fixture
def client(upstream: FakeEndpoint, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    config = GatewayConfig(
        database_url=f"sqlite:///{tmp_path}/g.db",
        image_dir=str(tmp_path / "images"),
        image_models={"painter": UpstreamConfig(base_url=upstream.base_url, model="img-9")},
    )
    with TestClient(create_app(config, admin_key=ADMIN)) as test_client:
        while test_client.get("/readyz").status_code != 200:
            time.sleep(0.2)
        created = test_client.post(
            "/admin/keys", json={"audience": "adult"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        yield test_client, created.json()["key"]


def test_generations_are_forwarded_and_their_outputs_checked(
    upstream: FakeEndpoint, client: tuple[TestClient, str]
) -> None:
    test_client, key = client

    def answer(request: Received) -> dict[str, object]:
        return {"created": 1, "data": [{"b64_json": _png((10, 120, 200))}]}

    upstream.respond(answer)
    response = test_client.post(
        "/v1/images/generations",
        json={"prompt": "a blue square", "model": "painter"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    released = base64.b64decode(response.json()["data"][0]["b64_json"])
    # The upstream's picture, pixel for pixel, now carrying its C2PA manifest (provenance).
    assert Image.open(io.BytesIO(released)).getpixel((5, 5)) == (10, 120, 200)
    assert read_manifest(released).actions == ["c2pa.created"]
    sent = upstream.requests[0]
    assert sent.path.endswith("/images/generations")
    assert sent.json()["model"] == "img-9" and sent.json()["response_format"] == "b64_json"
    trace = response.json()["safestack"]
    assert trace["status"] == "answered"
    # Only the configured image models are served.
    models = test_client.post(
        "/v1/images/generations",
        json={"prompt": "a blue square", "model": "safestack-sample-photos"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert models.status_code == 404 and models.json()["error"]["code"] == "model_not_found"


def test_an_upstream_that_answers_garbage_is_502_and_a_broken_image_is_withheld(
    upstream: FakeEndpoint, client: tuple[TestClient, str]
) -> None:
    test_client, key = client
    headers = {"Authorization": f"Bearer {key}"}
    upstream.reply({"data": [{"url": "http://elsewhere.example/a.png"}]})
    failed = test_client.post(
        "/v1/images/generations", json={"prompt": "a cat", "model": "painter"}, headers=headers
    )
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "upstream_error"
    upstream.reply({"data": [{"b64_json": base64.b64encode(b"not a png").decode()}]})
    withheld = test_client.post(
        "/v1/images/generations", json={"prompt": "a cat", "model": "painter"}, headers=headers
    )
    assert withheld.status_code == 400
    assert withheld.json()["error"]["code"] == "content_policy_violation"
    assert withheld.json()["safestack"]["layer"] == "output"
