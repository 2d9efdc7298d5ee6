"""Several gateway processes on one PostgreSQL, and a database that goes away mid-traffic.

The gateway keeps no account state in memory, so a ban made through one replica is enforced by
every other one on the next request; and a database outage is a clean 503 that writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from _postgres import PostgresCluster, fresh_database
from gateway_process import RunningGateway, start_gateway, stop_gateway

BENIGN = "What's the best way to gut a fish?"
MESSAGES = [{"role": "user", "content": BENIGN}]


@pytest.fixture(scope="module")
def replicas(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    tmp: Path = tmp_path_factory.mktemp("replicas")
    with fresh_database(postgres_server) as url:
        first = start_gateway(tmp, database_url=url, name="a")
        try:
            second = start_gateway(tmp, database_url=url, name="b")
        except BaseException:
            stop_gateway(first)
            raise
        try:
            yield first, second
        finally:
            stop_gateway(first)
            stop_gateway(second)


def test_a_ban_through_one_replica_is_enforced_by_the_other(
    replicas: tuple[RunningGateway, RunningGateway],
) -> None:
    a, b = replicas
    created = a.admin("POST", "/admin/keys", json={"audience": "adult"}).json()
    on_b = b.client(created["key"])
    assert on_b.chat.completions.create(model="safestack-recorded", messages=MESSAGES).choices

    # Each replica has its own admin key; the ban goes through the first one.
    response = a.admin(
        "POST", f"/admin/accounts/{created['account_id']}/ban", json={"reason": "abuse"}
    )
    assert response.status_code == 200
    with pytest.raises(openai.PermissionDeniedError):
        on_b.chat.completions.create(model="safestack-recorded", messages=MESSAGES)

    assert b.admin("POST", f"/admin/accounts/{created['account_id']}/unban").status_code == 200
    on_a = a.client(created["key"])
    assert on_a.chat.completions.create(model="safestack-recorded", messages=MESSAGES).choices
    audit = b.admin("GET", "/admin/audit").json()
    actors = {e["action"]: e["actor"] for e in audit if e["target"] == created["account_id"]}
    assert actors["account.ban"] != actors["account.unban"]  # two admin keys, two fingerprints


def test_a_database_outage_is_a_clean_503(
    replicas: tuple[RunningGateway, RunningGateway], postgres_cluster: PostgresCluster
) -> None:
    a, _ = replicas
    key = a.admin("POST", "/admin/keys", json={"audience": "adult"}).json()["key"]
    accounts_before = len(a.admin("GET", "/admin/accounts", params={"limit": 1000}).json())
    postgres_cluster.stop()
    try:
        with pytest.raises(openai.APIStatusError) as down:
            a.client(key).chat.completions.create(model="safestack-recorded", messages=MESSAGES)
        assert down.value.status_code == 503
        body = down.value.body
        assert isinstance(body, dict) and body["code"] == "store_unavailable"
        created = a.admin("POST", "/admin/keys", json={"audience": "adult"})
        assert created.status_code == 503 and "key" not in created.json()
        assert "postgres" not in created.text.lower()  # no URL, no driver detail in the body
        ready = httpx.get(f"{a.base_url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "unavailable"
        assert httpx.get(f"{a.base_url}/healthz").status_code == 200  # alive, not ready
    finally:
        postgres_cluster.start()
    # Back: the same key works, and the refused admin action left nothing behind.
    assert (
        a.client(key).chat.completions.create(model="safestack-recorded", messages=MESSAGES).choices
    )
    accounts_after = len(a.admin("GET", "/admin/accounts", params={"limit": 1000}).json())
    assert accounts_after == accounts_before
