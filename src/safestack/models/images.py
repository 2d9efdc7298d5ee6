"""Image models the stack wraps: any OpenAI-compatible images endpoint, and an offline sample.

An image model takes a prompt (and, for an edit, an image) and returns encoded images. What it
returns is untrusted like any upload: the stack decodes and checks every image before it leaves.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safestack.errors import InputError, ModelError, ModelTimeoutError, SafestackError
from safestack.http_endpoint import HTTPEndpoint, describe_validation_error
from safestack.media import encode_png
from safestack.models._protocol import ModelSpec

__all__ = [
    "MAX_IMAGES",
    "SAMPLE_PHOTOS_MODEL",
    "ImageModel",
    "OpenAICompatibleImageModel",
    "SamplePhotosModel",
]

#: The name the gateway serves the offline sample upstream under.
SAMPLE_PHOTOS_MODEL = "safestack-sample-photos"
#: The most images one request may ask for (OpenAI's images API allows 10).
MAX_IMAGES = 10


@runtime_checkable
class ImageModel(Protocol):
    """Anything that makes images from a prompt, and edits an uploaded image by a prompt.

    Both return encoded images (PNG, JPEG or WebP bytes), ``n`` of them at most. They raise
    :class:`~safestack.errors.ModelError` when the model gives no usable answer.
    """

    @property
    def spec(self) -> ModelSpec: ...

    def generate(self, prompt: str, *, n: int = 1, size: str | None = None) -> list[bytes]: ...

    def edit(
        self,
        image: bytes,
        prompt: str,
        *,
        mask: bytes | None = None,
        n: int = 1,
        size: str | None = None,
    ) -> list[bytes]: ...


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise InputError(f"n must be an integer from 1 to {MAX_IMAGES}, got {n!r}")
    return n


# -- any OpenAI-compatible images endpoint ------------------------------------------------------


class _ImageDatum(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    b64_json: str | None = None
    url: str | None = None


class _ImagesResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    data: list[_ImageDatum] = Field(min_length=1)


class OpenAICompatibleImageModel(HTTPEndpoint):
    """An image model behind ``{base_url}/images/generations`` and ``/images/edits``.

    Images are asked for as ``b64_json``, so the answer carries the bytes and nothing is fetched
    from a third address; an upstream that answers with URLs anyway is refused with a clear
    error rather than followed (following them would let an upstream point the gateway at any
    address). Failures are :class:`~safestack.errors.ModelError`, timeouts
    :class:`~safestack.errors.ModelTimeoutError`; the key never appears in an error.
    """

    version: ClassVar[str] = "1"
    error_class: ClassVar[type[SafestackError]] = ModelError
    timeout_error_class: ClassVar[type[SafestackError]] = ModelTimeoutError
    config_error_class: ClassVar[type[SafestackError]] = ModelError

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 1,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self.model = model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.public_url!r}, model={self.model!r})"

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            name="openai-images",
            version=self.version,
            args={"base_url": self.public_url, "model": self.model},
        )

    def generate(self, prompt: str, *, n: int = 1, size: str | None = None) -> list[bytes]:
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": _check_n(n),
            "response_format": "b64_json",
        }
        if size is not None:
            payload["size"] = size
        return self._images("images/generations", self._post("images/generations", payload))

    def edit(
        self,
        image: bytes,
        prompt: str,
        *,
        mask: bytes | None = None,
        n: int = 1,
        size: str | None = None,
    ) -> list[bytes]:
        form: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": _check_n(n),
            "response_format": "b64_json",
            "size": size,
        }
        files = {"image": ("image.png", image, "image/png")}
        if mask is not None:
            files["mask"] = ("mask.png", mask, "image/png")
        return self._images("images/edits", self._post_form("images/edits", form, files))

    def _images(self, path: str, body: Any) -> list[bytes]:
        where = self._where(path)
        try:
            parsed = _ImagesResponse.model_validate(body)
        except ValidationError as exc:
            raise self._error(
                f"{where}: the answer is not an images response: {describe_validation_error(exc)}"
            ) from None
        out: list[bytes] = []
        for index, datum in enumerate(parsed.data):
            if datum.b64_json is None:
                raise self._error(
                    f"{where}: image {index} has no b64_json (URL answers are not followed)"
                )
            try:
                out.append(base64.b64decode(datum.b64_json, validate=True))
            except ValueError:
                raise self._error(f"{where}: image {index}: b64_json is not base64") from None
        return out


# -- the offline sample upstream -----------------------------------------------------------------

#: Public-domain photographs shipped by scikit-image (``skimage.data``), with the words that pick
#: them. The licences are those stated in scikit-image's data documentation.
_SAMPLES: dict[str, tuple[tuple[str, ...], str]] = {
    "coffee": (("coffee", "cup", "drink", "cafe", "espresso"), "CC0 (Rachel Michetti)"),
    "chelsea": (("cat", "kitten", "pet", "animal"), "CC0 (Stefan van der Walt)"),
    "rocket": (("rocket", "launch", "space", "spacex"), "public domain (SpaceX)"),
    "astronaut": (
        ("astronaut", "person", "woman", "portrait", "people", "human", "face"),
        "public domain (NASA, Eileen Collins)",
    ),
    "hubble_deep_field": (
        ("galaxy", "galaxies", "stars", "universe", "hubble"),
        "public domain (NASA)",
    ),
    "coins": (("coin", "coins", "money"), "no known copyright restrictions (Brooklyn Museum)"),
}


def _sample_pixels(name: str) -> Image.Image:
    import skimage.data

    loader: Callable[[], Any] = getattr(skimage.data, name)
    array = np.asarray(loader())
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(array.astype(np.uint8)).convert("RGB")


class SamplePhotosModel:
    """An offline stand-in image upstream that returns real public-domain photographs.

    It does not generate anything: ``generate`` returns the scikit-image sample photograph whose
    keywords the prompt mentions (a cat prompt gets the cat photo, a person prompt the NASA
    astronaut portrait), or one picked by the prompt's hash; ``edit`` returns the uploaded image
    mirrored. That is enough to exercise every check on real photographs (faces, people,
    photorealism, hashes) in the demo and the tests, with no GPU and no network, and it says
    what it is in its name and spec so that nobody mistakes it for a generator.
    """

    def __init__(self, *, photos: Sequence[str] | None = None) -> None:
        self.photos = tuple(photos or _SAMPLES)
        unknown = [p for p in self.photos if p not in _SAMPLES]
        if unknown:
            raise InputError(f"unknown sample photo(s) {unknown}; known: {sorted(_SAMPLES)}")
        self._cache: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(photos={list(self.photos)!r})"

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            name=SAMPLE_PHOTOS_MODEL,
            version="1",
            args={
                "photos": list(self.photos),
                "source": "skimage.data",
                "licences": {name: _SAMPLES[name][1] for name in self.photos},
            },
        )

    def pick(self, prompt: str) -> str:
        """The photograph a prompt gets: by keyword, else by a stable hash of the prompt."""
        words = set(prompt.casefold().replace(",", " ").replace(".", " ").split())
        for name in self.photos:
            if words & set(_SAMPLES[name][0]):
                return name
        digest = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
        return self.photos[digest[0] % len(self.photos)]

    def generate(self, prompt: str, *, n: int = 1, size: str | None = None) -> list[bytes]:
        name = self.pick(prompt)
        if name not in self._cache:
            self._cache[name] = encode_png(_sample_pixels(name))
        return [self._cache[name]] * _check_n(n)

    def edit(
        self,
        image: bytes,
        prompt: str,
        *,
        mask: bytes | None = None,
        n: int = 1,
        size: str | None = None,
    ) -> list[bytes]:
        try:
            with Image.open(io.BytesIO(image)) as opened:
                edited = ImageOps.mirror(ImageOps.exif_transpose(opened).convert("RGB"))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{SAMPLE_PHOTOS_MODEL}: cannot read the image to edit: {exc}"
            ) from None
        return [encode_png(edited)] * _check_n(n)
