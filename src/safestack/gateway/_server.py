"""Running the gateway: uvicorn on one process, with the slow-client guard installed."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from safestack.gateway._config import GatewayConfig
from safestack.gateway._limits import slow_client_guard

__all__ = ["serve"]


def serve(
    app: FastAPI,
    config: GatewayConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM finish the requests in flight).

    Access lines come from the gateway's own logger (with request ids, without headers), so
    uvicorn's access log — which would print query strings — is off.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http=slow_client_guard(config.header_timeout_s),
            log_level=log_level,
            access_log=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=30,
            server_header=False,
        )
    )
    server.run()
