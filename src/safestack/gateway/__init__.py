"""The OpenAI-compatible gateway: the safety stack as a drop-in HTTP service.

A team changes only the ``base_url`` of its ``openai`` client::

    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=key_from_admin)

Requests are identified by API key (deny by default: 401 without one, 403 for a suspended
account), judged by the stack for the account's audience, forwarded to the upstream configured
for the requested model name, and recorded in the store with the decision. See
``docs/gateway.md`` for the API, streaming windows, strikes and operations.
"""

from safestack.gateway._app import MIN_ADMIN_KEY_CHARS, create_app
from safestack.gateway._config import (
    DEFAULT_MODEL_NAME,
    GatewayConfig,
    UpstreamConfig,
    load_gateway_config,
)
from safestack.gateway._server import serve

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MIN_ADMIN_KEY_CHARS",
    "GatewayConfig",
    "UpstreamConfig",
    "create_app",
    "load_gateway_config",
    "serve",
]
