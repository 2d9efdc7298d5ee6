"""A classifier backed by any endpoint that speaks OpenAI's ``POST /moderations``.

The endpoint's own categories and ``flagged`` bit are not what we act on: its scores are mapped
onto the written policy's categories (``Category.openai``) and flagged by the policy's thresholds
for the audience, so that switching from the embedded classifier to a hosted one changes the
detector, not the policy.

A remote answer is trusted only when it is in contract. Anything else — a wrong number of results,
a score outside [0, 1], a missing field, a non-JSON body, an HTTP error, a timeout — raises
:class:`~safestack.errors.RemoteError`; whether that blocks or lets content through is the
stack's fail-open / fail-closed decision, not this module's.

The HTTP plumbing (:class:`HTTPClassifierBase`) is shared with :mod:`safestack.classify.llm`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safestack.classify._inputs import as_texts
from safestack.classify._policy_bound import PolicyBound
from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.errors import ClassifierError, RemoteError
from safestack.policy import Audience, Policy

__all__ = ["HTTPClassifierBase", "RemoteModerationClassifier", "describe_validation_error"]

logger = logging.getLogger(__name__)

#: Statuses worth another try: rate limiting and server-side failures. 501 (not implemented) and
#: 505 will not change on a retry.
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 2.0
_SNIPPET = 200


def describe_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """The first few problems of a pydantic error, each with where it is and the bad value."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = repr(err.get("input"))
        if len(got) > 60:
            got = got[:57] + "..."
        parts.append(f"{where}: {err['msg']} (got {got})")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


class HTTPClassifierBase:
    """Transport shared by the remote classifiers: a lazy client, bounded retries, safe errors.

    The client is created on first use, not in the constructor, so that building a classifier
    from configuration never opens a connection. Retries cover what is plausibly transient (429,
    5xx, refused or dropped connections) with a short exponential backoff; a timeout is not
    retried because the caller's latency budget is already spent. The worst case is therefore
    about ``(1 + max_retries) × timeout`` plus a few seconds of backoff.

    The API key goes into the ``Authorization`` header and nowhere else: error messages, logs,
    ``repr`` and the spec show the endpoint without user-info or query string, and any echo of
    the key in a server's error body is masked.
    """

    def __init__(
        self, base_url: str, *, api_key: str | None, timeout: float, max_retries: int
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: httpx.Client | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection pool; the classifier reopens one if it is used again."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.public_url!r})"

    # -- helpers -----------------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        """``base_url`` as it may be shown: no user-info (credentials) and no query string."""
        try:
            url = httpx.URL(self.base_url)
        except (httpx.InvalidURL, TypeError):
            return "<invalid base_url>"
        port = f":{url.port}" if url.port is not None else ""
        return f"{url.scheme}://{url.host}{port}{url.path}".rstrip("/")

    def _redact(self, text: str) -> str:
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return text

    def _error(self, message: str) -> RemoteError:
        return RemoteError(self._redact(message))

    def _check_transport_params(self) -> None:
        try:
            url = httpx.URL(self.base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ClassifierError(f"base_url {self.public_url!r} is not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ClassifierError(
                f"base_url {self.public_url!r} must be an http:// or https:// URL with a host, "
                "e.g. 'https://api.openai.com/v1'"
            )
        if not (isinstance(self.timeout, int | float) and self.timeout > 0):
            raise ClassifierError(
                f"timeout must be a positive number of seconds, got {self.timeout!r}"
            )
        if not (isinstance(self.max_retries, int) and self.max_retries >= 0):
            raise ClassifierError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._check_transport_params()
            headers = {"Accept": "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._client = httpx.Client(
                base_url=self.base_url, headers=headers, timeout=self.timeout
            )
        return self._client

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """Exponential backoff, or the server's ``Retry-After`` (seconds), capped either way."""
        delay: float = _BACKOFF_S * 2.0**attempt
        if response is not None:
            # An HTTP-date Retry-After is ignored: not worth parsing for a wait capped at 2 s.
            with contextlib.suppress(ValueError):
                delay = float(response.headers.get("retry-after", delay))
        return min(max(delay, 0.0), _MAX_BACKOFF_S)

    def _snippet(self, response: httpx.Response) -> str:
        text = response.text.strip().replace("\n", " ")
        return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` as JSON to ``base_url/path``; the decoded JSON body of a 2xx answer."""
        client = self._http()
        where = f"{self.public_url}/{path}"
        attempts = 1 + self.max_retries
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = client.post(path, json=payload)
            except httpx.TimeoutException as exc:
                raise self._error(
                    f"{where}: timed out after {self.timeout} s ({type(exc).__name__})"
                ) from exc
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if last:
                    raise self._error(
                        f"{where}: connection failed after {attempts} attempt(s): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._backoff(attempt, None)
                logger.warning("%s: %s; retrying in %.1f s", where, type(exc).__name__, delay)
                time.sleep(delay)
                continue
            except httpx.HTTPError as exc:
                raise self._error(f"{where}: request failed: {type(exc).__name__}: {exc}") from exc

            status = response.status_code
            if status in _RETRY_STATUS and not last:
                delay = self._backoff(attempt, response)
                logger.warning("%s: HTTP %d; retrying in %.1f s", where, status, delay)
                time.sleep(delay)
                continue
            if not 200 <= status < 300:
                retried = status in _RETRY_STATUS and attempts > 1
                tries = f" after {attempts} attempts" if retried else ""
                raise self._error(
                    f"{where}: HTTP {status} {response.reason_phrase}{tries}: "
                    f"{self._snippet(response)!r}"
                )
            try:
                return response.json()
            except ValueError as exc:
                raise self._error(
                    f"{where}: HTTP {status} with a body that is not JSON: "
                    f"{self._snippet(response)!r}"
                ) from exc
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


# -- the moderation endpoint's contract -------------------------------------------------------

Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _ModerationResult(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, Score]


class _ModerationResponse(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    results: list[_ModerationResult]


@register_classifier("remote-moderation")
class RemoteModerationClassifier(PolicyBound, HTTPClassifierBase):
    """Scores text with a remote moderation endpoint, judged by the written policy.

    A policy category's score is the highest score among the OpenAI categories it maps to
    (``Category.openai``); a category that maps to none, or whose names the endpoint does not
    score, is absent from ``Verdict.scores`` and never flagged by this classifier — pair it with
    another classifier for those. Texts are sent ``batch_size`` at a time, one request each.
    """

    registry_name: ClassVar[str] = "remote-moderation"
    version: ClassVar[str] = "1"
    input_kind: ClassVar[InputKind] = "text"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str = "omni-moderation-latest",
        policy: Policy | None = None,
        audience: Audience | str = Audience.ADULT,
        timeout: float = 10.0,
        batch_size: int = 32,
        max_retries: int = 2,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self.model = model
        self.policy = policy
        self.audience = audience
        self.batch_size = batch_size

    @property
    def spec(self) -> ClassifierSpec:
        policy = self._policy
        return ClassifierSpec(
            name=self.registry_name,
            version=self.version,
            args={
                "base_url": self.public_url,
                "model": self.model,
                "audience": self._audience.value,
                "policy": f"{policy.name}@{policy.version}",
            },
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.public_url!r}, model={self.model!r}, "
            f"audience={str(self.audience)!r})"
        )

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        texts = as_texts(items)
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ClassifierError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not texts:
            return []
        spec = self.spec
        thresholds = self._policy.thresholds(self._audience)
        mapping = {c.id: c.openai for c in self._policy.categories if c.openai}
        verdicts: list[Verdict] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            for result in self._moderate(batch):
                scores = _policy_scores(result.category_scores, mapping)
                verdicts.append(Verdict.from_scores(scores, thresholds, spec))
        return verdicts

    def _moderate(self, texts: list[str]) -> list[_ModerationResult]:
        body = self._post("moderations", {"model": self.model, "input": texts})
        where = f"{self.public_url}/moderations"
        try:
            parsed = _ModerationResponse.model_validate(body)
        except ValidationError as exc:
            raise self._error(
                f"{where}: answer out of contract: {describe_validation_error(exc)}"
            ) from None
        if len(parsed.results) != len(texts):
            raise self._error(
                f"{where}: answered {len(parsed.results)} result(s) for {len(texts)} input(s); "
                "results cannot be matched to inputs"
            )
        return parsed.results


def _policy_scores(
    openai_scores: dict[str, float], mapping: dict[str, list[str]]
) -> dict[str, float]:
    """Policy category → max score over the OpenAI categories it maps to (only those scored)."""
    out: dict[str, float] = {}
    for category_id, names in mapping.items():
        scored = [openai_scores[name] for name in names if name in openai_scores]
        if scored:
            out[category_id] = max(scored)
    return out
