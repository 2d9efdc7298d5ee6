"""What a known-bad match costs the request that carries it, and how fast reports go out.

``Enforcer.apply`` writes the report, the ban and their audit entries in one transaction before
the gateway answers: its latency is on the request path of every matched upload. Each apply
uses a fresh account and a fresh image, so every call files a new report and bans (the most
work it can do). Then a ``ReportDeliverer`` drains the queued reports to a receiver on
127.0.0.1 that answers 200 at once: signing, posting and the outbox bookkeeping, per report.

    python bench/enforcement.py                                   # SQLite in a temp folder
    python bench/enforcement.py --database-url postgresql+psycopg://…  # and PostgreSQL
    python bench/enforcement.py --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from safestack.hashing import (
    Action,
    Enforcer,
    ImageHashes,
    Match,
    ReportDeliverer,
    ReportReceiverConfig,
)
from safestack.store import Store

SECTION = "## Known-bad media: enforcement and report delivery"
_SECRET_ENV = "SAFESTACK_BENCH_REPORT_SECRET"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def _hashes() -> ImageHashes:
    return ImageHashes(
        sha256=secrets.token_hex(32),
        md5=secrets.token_hex(16),
        pdq=secrets.token_hex(32),
        quality=100,
    )


def measure(url: str, n: int, receiver_url: str) -> dict[str, Any]:
    """Apply ``n`` matches on the store at ``url``, then deliver the ``n`` reports."""
    config = ReportReceiverConfig(url=receiver_url, secret_env=_SECRET_ENV)
    with Store(url) as store:
        store.migrate()
        bank = store.create_hash_bank(name=f"bench-{secrets.token_hex(4)}", actor="bench")
        enforcer = Enforcer(store, receiver=config)
        match = Match(
            bank=bank.name,
            bank_id=bank.id,
            hash_type="pdq",
            value=secrets.token_hex(32),
            distance=12,
            actions=frozenset(Action),
        )
        accounts = [store.create_account(audience="adult", actor="bench").id for _ in range(n)]
        times = []
        for i, account in enumerate(accounts):
            start = time.perf_counter()
            enforcer.apply(
                match, account_id=account, request_id=f"req-{i}", endpoint="bench", hashes=_hashes()
            )
            times.append((time.perf_counter() - start) * 1000)
        with ReportDeliverer(store, config) as deliverer:
            start = time.perf_counter()
            delivered = 0
            while delivered < n:
                sent = deliverer.deliver_due()
                if not sent:
                    break
                delivered += sent
            deliver_s = time.perf_counter() - start
    ms = np.array(times)
    return {
        "n": n,
        "apply_p50_ms": float(np.percentile(ms, 50)),
        "apply_p99_ms": float(np.percentile(ms, 99)),
        "delivered": delivered,
        "reports_per_s": delivered / deliver_s if deliver_s else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="matches to apply per database")
    parser.add_argument("--database-url", action="append", default=[], help="also this store")
    parser.add_argument("--out", type=Path, help="write the section into this Markdown file")
    args = parser.parse_args()
    os.environ.setdefault(_SECRET_ENV, secrets.token_hex(32))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}/reports"
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = measure(f"sqlite:///{tmp}/bench.db", args.n, receiver_url)
        for url in args.database_url:
            results[url.split(":", 1)[0].split("+")[0]] = measure(url, args.n, receiver_url)
    server.shutdown()
    server.server_close()
    lines = [
        f"`python bench/enforcement.py` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores): `Enforcer.apply` with all three actions (reject, report, ban)"
        f" on a fresh account and image each time, {args.n} times per database; then a "
        "`ReportDeliverer` drains the queued reports (HMAC-signed POSTs) to a receiver on "
        "127.0.0.1 that answers 200 at once.",
        "",
        "| store | apply p50 | apply p99 | reports delivered | delivery |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {r['apply_p50_ms']:.1f} ms | {r['apply_p99_ms']:.1f} ms | "
            f"{r['delivered']} of {r['n']} | {r['reports_per_s']:.0f} reports/s |"
            for name, r in results.items()
        ),
        "",
        "`apply` is on the request path of a matched upload only (report, ban and audit "
        "entries in one transaction, before the gateway answers); an unmatched upload does "
        "not run it.",
    ]
    print("\n".join(lines))
    if args.out:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from stack import write_section  # bench/stack.py

        write_section(args.out, SECTION, lines)


if __name__ == "__main__":
    main()
