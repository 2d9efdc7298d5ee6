"""The ``console`` fixture: a :class:`~console_harness.ConsoleHarness` for one test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_harness import ConsoleHarness

from safestack.gateway import GatewayConfig, create_app
from safestack.gateway._config import ConsoleConfig


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleHarness]:
    admin_key = secrets.token_hex(24)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    config = GatewayConfig(
        database_url=f"sqlite:///{tmp_path}/console.db",
        image_dir=str(tmp_path / "images"),
        console=ConsoleConfig(evidence_dir=str(evidence)),
    )
    app = create_app(config, admin_key=admin_key)
    # The lifespan is not run: it would warm every classifier of both audiences in the
    # background for each test (most console pages never call a model). The store is migrated
    # here instead; a test that chats loads the classifiers it needs on first use.
    store = app.state.gateway.store
    store.migrate()
    try:
        yield ConsoleHarness(app=app, admin_key=admin_key, store=store, evidence_dir=evidence)
    finally:
        app.state.gateway.close()
