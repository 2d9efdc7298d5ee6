"""Starting real gateways for the tests: ``safestack serve`` processes on 127.0.0.1.

Each module gets gateway processes on a SQLite file and on a fresh PostgreSQL database, in front
of a scripted upstream (a real HTTP server on loopback) and of the recorded model. Tests talk to
them with the real ``openai`` client and raw HTTP.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from openai import OpenAI

from loopback import FakeEndpoint, free_port

SAFESTACK = str(Path(sys.executable).with_name("safestack"))
#: The model names the test gateways serve besides the recorded default.
SCRIPTED = "scripted"


@dataclass
class RunningGateway:
    """One ``safestack serve`` process, and what a test needs to talk to it."""

    base_url: str
    admin_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    database_url: str
    _keys: list[str] = field(default_factory=list)
    _clients: list[OpenAI] = field(default_factory=list)

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs
        )

    def new_key(self, audience: str = "adult") -> str:
        response = self.admin("POST", "/admin/keys", json={"audience": audience})
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        self._keys.append(key)
        return key

    def client(self, key: str, **kwargs: Any) -> OpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30)
        client = OpenAI(base_url=self.v1, api_key=key, **kwargs)
        self._clients.append(client)  # closed by stop_gateway: no pooled socket outlives a test
        return client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def secrets_seen(self) -> list[str]:
        """Every secret this gateway was given or handed out (for 'never in logs' checks)."""
        return [self.admin_key, *self._keys]


def start_gateway(
    tmp: Path, *, database_url: str, config: dict[str, Any] | None = None, name: str = "gw"
) -> RunningGateway:
    """Start ``safestack serve`` and wait until ``/readyz`` says ready (classifiers loaded).

    Development signing credentials go to ``tmp/provenance`` (shared by the gateways of one
    ``tmp``, like replicas), never to the user's data directory.
    """
    port = free_port()
    admin_key = secrets.token_hex(24)
    config_path = tmp / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump({"database_url": database_url, **(config or {})}))
    log_path = tmp / f"{name}.log"
    env = {
        **os.environ,
        "SAFESTACK_ADMIN_KEY": admin_key,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "SAFESTACK_PROVENANCE_DIR": str(tmp / "provenance"),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [SAFESTACK, "serve", "--config", str(config_path), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    gateway = RunningGateway(f"http://127.0.0.1:{port}", admin_key, process, log_path, database_url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"safestack serve exited {process.returncode}:\n{gateway.log()}")
        try:
            if httpx.get(f"{gateway.base_url}/readyz", timeout=2).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_gateway(gateway)
    raise RuntimeError(f"safestack serve was not ready within 120 s:\n{gateway.log()}")


def stop_gateway(gateway: RunningGateway) -> None:
    for client in gateway._clients:
        client.close()
    gateway._clients.clear()
    if gateway.process.poll() is None:
        gateway.process.terminate()
        try:
            gateway.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()


def gateway_config(upstream: FakeEndpoint) -> dict[str, Any]:
    """The test gateways: the recorded model, a scripted upstream, short timeouts, 2 strikes."""
    return {
        "serve_stack_model": True,
        "models": {SCRIPTED: {"base_url": upstream.base_url, "timeout_s": 2}},
        "strikes": {"threshold": 2, "window_s": 3600},
        "header_timeout_s": 1,
        "body_timeout_s": 1,
    }
