"""One HTTP transport for every remote component: classifiers, judges and wrapped models.

Remote classifiers and remote models fail in the same ways (slow servers, rate limits, dropped
connections, keys echoed back in error bodies), so they share one implementation of the cure: a
lazy client, bounded retries, and errors that never carry a secret. What differs is only which
:mod:`safestack.errors` class each failure becomes, so that a caller can still tell an
unreachable classifier (:class:`~safestack.errors.RemoteError`) from an unreachable model
(:class:`~safestack.errors.ModelError`); subclasses say which through three class attributes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Generator
from typing import Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safestack.errors import SafestackError

__all__ = [
    "ChatCompletion",
    "CompletionChoice",
    "CompletionMessage",
    "HTTPEndpoint",
    "describe_validation_error",
]

#: Statuses worth another try: rate limiting and server-side failures. 501 (not implemented) and
#: 505 will not change on a retry.
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 2.0
_SNIPPET = 200


class CompletionMessage(BaseModel):
    """The part of an OpenAI chat-completion message safestack reads (other fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    content: str | None = None
    refusal: str | None = None


class CompletionChoice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message: CompletionMessage
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    """A ``POST /chat/completions`` answer, as far as remote judges and models rely on it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str | None = None
    choices: list[CompletionChoice] = Field(min_length=1)


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


def _shorten(text: str) -> str:
    text = text.strip().replace("\n", " ")
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


class HTTPEndpoint:
    """A JSON-over-HTTP endpoint: a lazy client, bounded retries, safe errors.

    The client is created on first use, not in the constructor, so that building a component
    from configuration never opens a connection. Retries cover what is plausibly transient (408,
    429, 5xx, refused or dropped connections) with a short exponential backoff or the server's
    ``Retry-After``; a timeout is not retried because the caller's latency budget is already
    spent. The worst case is therefore about ``(1 + max_retries) × timeout`` plus a few seconds
    of backoff. ``timeout`` bounds each network operation (connect, each read), not a whole
    stream: a server that keeps sending stays within it.

    The API key goes into the ``Authorization`` header and nowhere else: error messages, logs,
    ``repr`` and specs show the endpoint without user-info or query string, and any echo of the
    key in a server's error body is masked.

    Subclasses choose the errors: ``error_class`` for failures and answers out of contract,
    ``timeout_error_class`` for timeouts, ``config_error_class`` for bad parameters (reported on
    first use, like every parameter check in safestack).
    """

    error_class: ClassVar[type[SafestackError]] = SafestackError
    timeout_error_class: ClassVar[type[SafestackError]] = SafestackError
    config_error_class: ClassVar[type[SafestackError]] = SafestackError

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
        """Release the connection pool; the endpoint reopens one if it is used again."""
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

    def _error(self, message: str) -> SafestackError:
        return self.error_class(self._redact(message))

    def _timeout_error(self, message: str) -> SafestackError:
        return self.timeout_error_class(self._redact(message))

    def _where(self, path: str) -> str:
        return f"{self.public_url}/{path}"

    @property
    def _logger(self) -> logging.Logger:
        # Retries are logged under the component's module, where a user sets log levels.
        return logging.getLogger(type(self).__module__)

    def _check_transport_params(self) -> None:
        config_error = self.config_error_class
        try:
            url = httpx.URL(self.base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise config_error(f"base_url {self.public_url!r} is not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise config_error(
                f"base_url {self.public_url!r} must be an http:// or https:// URL with a host, "
                "e.g. 'https://api.openai.com/v1'"
            )
        if not (isinstance(self.timeout, int | float) and self.timeout > 0):
            raise config_error(
                f"timeout must be a positive number of seconds, got {self.timeout!r}"
            )
        if not (isinstance(self.max_retries, int) and self.max_retries >= 0):
            raise config_error(f"max_retries must be an integer >= 0, got {self.max_retries!r}")

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
        return _shorten(response.text)

    def _streamed_snippet(self, response: httpx.Response) -> str:
        """The start of a streamed error body; what could be read if the body breaks off."""
        try:
            response.read()
        except httpx.HTTPError as exc:
            return f"<body unreadable: {type(exc).__name__}>"
        finally:
            response.close()
        return self._snippet(response)

    # -- requests ----------------------------------------------------------------------------

    def _send(
        self,
        path: str,
        payload: dict[str, Any],
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> httpx.Response:
        """POST with retries; the 2xx response (its body unread when ``stream``).

        With ``files`` the request is ``multipart/form-data`` (``payload`` becomes its form
        fields), as image-edit endpoints take it; otherwise ``payload`` is sent as JSON.
        """
        client = self._http()
        where = self._where(path)
        attempts = 1 + self.max_retries
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                if files is None:
                    request = client.build_request("POST", path, json=payload, headers=headers)
                else:
                    form = {k: str(v) for k, v in payload.items() if v is not None}
                    request = client.build_request(
                        "POST", path, data=form, files=files, headers=headers
                    )
                response = client.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                raise self._timeout_error(
                    f"{where}: timed out after {self.timeout} s ({type(exc).__name__})"
                ) from exc
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if last:
                    raise self._error(
                        f"{where}: connection failed after {attempts} attempt(s): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._backoff(attempt, None)
                self._logger.warning("%s: %s; retrying in %.1f s", where, type(exc).__name__, delay)
                time.sleep(delay)
                continue
            except httpx.HTTPError as exc:
                raise self._error(f"{where}: request failed: {type(exc).__name__}: {exc}") from exc

            status = response.status_code
            if status in _RETRY_STATUS and not last:
                response.close()
                delay = self._backoff(attempt, response)
                self._logger.warning("%s: HTTP %d; retrying in %.1f s", where, status, delay)
                time.sleep(delay)
                continue
            if not 200 <= status < 300:
                retried = status in _RETRY_STATUS and attempts > 1
                tries = f" after {attempts} attempts" if retried else ""
                snippet = self._streamed_snippet(response) if stream else self._snippet(response)
                raise self._error(
                    f"{where}: HTTP {status} {response.reason_phrase}{tries}: {snippet!r}"
                )
            return response
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` as JSON to ``base_url/path``; the decoded JSON body of a 2xx answer."""
        return self._json_of(path, self._send(path, payload))

    def _post_form(
        self, path: str, form: dict[str, Any], files: dict[str, tuple[str, bytes, str]]
    ) -> Any:
        """POST a multipart form with ``files``; the decoded JSON body of a 2xx answer."""
        return self._json_of(path, self._send(path, form, files=files))

    def _json_of(self, path: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise self._error(
                f"{self._where(path)}: HTTP {response.status_code} with a body that is not JSON: "
                f"{self._snippet(response)!r}"
            ) from exc

    def _stream_lines(
        self, path: str, payload: dict[str, Any], *, accept: str = "text/event-stream"
    ) -> Generator[str, None, None]:
        """POST, then the body's lines as they arrive.

        The request is sent, and its status checked, before this returns: a refused connection
        or an HTTP error raises here, while the caller can still answer with an error of its own
        instead of a broken stream. The returned generator owns the response; exhausting it,
        closing it, or dropping it releases the connection.
        """
        lines = self._iter_lines(path, payload, accept)
        next(lines)  # runs up to the first yield: the request is sent and answered
        return lines

    def _iter_lines(
        self, path: str, payload: dict[str, Any], accept: str
    ) -> Generator[str, None, None]:
        response = self._send(path, payload, stream=True, headers={"Accept": accept})
        where = self._where(path)
        try:
            yield ""  # primed by _stream_lines; never seen by the caller
            try:
                yield from response.iter_lines()
            except httpx.TimeoutException as exc:
                raise self._timeout_error(
                    f"{where}: timed out after {self.timeout} s in the middle of the stream "
                    f"({type(exc).__name__})"
                ) from exc
            except httpx.HTTPError as exc:
                raise self._error(
                    f"{where}: the stream broke off: {type(exc).__name__}: {exc}"
                ) from exc
        finally:
            response.close()

    def _stream_events(self, path: str, payload: dict[str, Any]) -> Generator[str, None, None]:
        """POST, then the ``data`` of each server-sent event, in order.

        Parsed strictly: comments (``:``) and the ``event``/``id``/``retry`` fields are skipped,
        any other line means the server is not streaming events, which is an error rather than
        a silently empty stream.
        """
        lines = self._stream_lines(path, payload)
        return self._sse_data(lines, self._where(path))

    def _sse_data(
        self, lines: Generator[str, None, None], where: str
    ) -> Generator[str, None, None]:
        data: list[str] = []
        try:
            for line in lines:
                if not line:  # a blank line ends an event
                    if data:
                        yield "\n".join(data)
                        data = []
                    continue
                if line.startswith(":"):
                    continue  # a comment: servers send them as keep-alives
                name, colon, value = line.partition(":")
                if name == "data" and colon:
                    data.append(value.removeprefix(" "))
                elif name not in ("event", "id", "retry"):
                    raise self._error(
                        f"{where}: not a server-sent event stream; got the line {_shorten(line)!r}"
                    )
            if data:  # the last event may lack its blank line when the server closes
                yield "\n".join(data)
        finally:
            lines.close()
