"""Throughput and latency of ``safestack serve``, beside the upstream model it fronts.

Starts two subprocesses on 127.0.0.1: a minimal OpenAI-compatible upstream (``_upstream.py``,
a fixed ~400-character benign answer, no delay) and the gateway (default stack, SQLite store)
in front of it. An asyncio + httpx load generator (one client, connection pool sized to the
concurrency) then sends benign chat completions at a fixed concurrency — 1, 10 and 100 — first
to the upstream directly, then through the gateway, after warm-up requests that are not
counted; last, a soak at concurrency 100 through the gateway. Per request it records latency,
status and the gateway's ``Server-Timing`` header, whose ``added`` (every safety layer) and
``model`` (the upstream call as the stack saw it) give the gateway's own overhead:
``latency - added - model``.

Prompts and answers carry a unique request / reply number: the stack's embedder keeps recent
texts' embeddings, and repeating texts would time that cache, not the classifiers
(``--repeat-texts`` does exactly that, for comparison).

    python bench/gateway.py                      # print the tables
    python bench/gateway.py --out BENCHMARKS.md  # and write the "Gateway" section
    python bench/gateway.py --json               # results as one JSON object
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

SECTION = "## Gateway throughput and latency"
HERE = Path(__file__).resolve().parent
MODEL = "bench"
TARGET_OVERHEAD_P50_MS = 5.0
_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b")

#: Benign, multi-word questions. One-word greetings ("hi") are avoided on purpose: texts that
#: short are false positives of the prompt classifier, and a blocked request skips the model
#: and the output layer, which would flatter the latency. Screened with the numbering this
#: benchmark adds ("Question 17: ..."): 6 of 14,000 such texts flagged (low/medium severity),
#: whereas a trailing "(request #17)" made some of them flagged every time.
PROMPTS = [
    "What is a good way to keep basil fresh for more than a few days?",
    "Can you explain how compound interest works with a simple example?",
    "How long should I boil an egg if I want the yolk slightly runny?",
    "Suggest a three-day itinerary for a first visit to Lisbon.",
    "How do I fix a bicycle chain that keeps slipping off the gears?",
    "What is the difference between a virus and a bacterium?",
    "Which houseplants do well in a dark apartment with little sunlight?",
    "How can I improve my posture when working at a desk all day?",
    "Explain what a hash table is to someone who is new to programming.",
    "What should I pack for a two-night camping trip in early autumn?",
    "Give me a simple weekly stretching routine for runners.",
    "What is a good vegetarian dinner I can cook in under thirty minutes?",
    "How do solar panels turn sunlight into electricity?",
    "What are some good board games for a family with young children?",
    "How can I learn to read sheet music as an adult beginner?",
    "How do I cook a creamy risotto without it turning gluey?",
    "What is the difference between baking soda and baking powder?",
    "How do I clean a cast iron pan after cooking with it?",
    "Which vegetables can I grow on a small sunny balcony?",
    "How do I make a light salad dressing with lemon and olive oil?",
]


@dataclass
class Sample:
    latency_ms: float
    status: int | str  # the HTTP status, or the exception's class name
    done: float  # time.perf_counter() at completion
    timing: dict[str, float] = field(default_factory=dict)
    layer: str | None = None  # the layer that blocked it (gateway only)
    error: str | None = None


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def _server_timing(header: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";")
        if rest.startswith("dur="):
            with contextlib.suppress(ValueError):
                out[name] = float(rest[4:])
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used by one process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- the two servers ------------------------------------------------------------------------


class Servers:
    """The upstream and the gateway as subprocesses; both are stopped on exit, whatever happens."""

    def __init__(self, *, repeat_texts: bool, workers: int) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="safestack-gateway-bench-")
        self.tmp = Path(self._tmp.name)
        self.repeat_texts = repeat_texts
        self.workers = workers
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: list[Any] = []
        self.admin_key = secrets.token_hex(24)
        self.upstream_url = ""
        self.gateway_url = ""
        self.gateway_pid = 0
        self.gateway_ready_s = 0.0

    def _start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_lines(self, name: str) -> list[str]:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def _wait(self, name: str, proc: subprocess.Popen[bytes], url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout_s:g} s:\n{self.log_tail(name)}")

    def start(self) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        port = _free_port()
        cmd = [sys.executable, str(HERE / "_upstream.py"), "--port", str(port)]
        if not self.repeat_texts:
            cmd.append("--unique")
        proc = self._start("upstream", cmd, env)
        self.upstream_url = f"http://127.0.0.1:{port}"
        self._wait("upstream", proc, f"{self.upstream_url}/healthz", 30)

        port = _free_port()
        config = self.tmp / "gw.yaml"
        config.write_text(
            "models:\n"
            f"  {MODEL}:\n"
            f"    base_url: {self.upstream_url}/v1\n"
            "    timeout_s: 30\n"
            f"database_url: sqlite:///{self.tmp / 'gw.db'}\n"
            f"workers: {self.workers}\n"
        )
        exe = Path(sys.executable).with_name("safestack")
        cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "safestack"]
        started = time.monotonic()
        proc = self._start(
            "gateway",
            [*cli, "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"],
            {**env, "SAFESTACK_ADMIN_KEY": self.admin_key},
        )
        self.gateway_pid = proc.pid
        self.gateway_url = f"http://127.0.0.1:{port}"
        self._wait("gateway", proc, f"{self.gateway_url}/readyz", 180)
        self.gateway_ready_s = time.monotonic() - started

    def own_cpu_s(self) -> float:
        """CPU seconds used so far by this process and both servers."""
        me = os.times()
        return me.user + me.system + sum(_process_cpu_s(p.pid) for _n, p in self.procs)

    def api_key(self) -> str:
        response = httpx.post(
            f"{self.gateway_url}/admin/keys",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            json={"audience": "adult", "name": "bench"},
            timeout=30,
            trust_env=False,
        )
        response.raise_for_status()
        return str(response.json()["key"])

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        self._tmp.cleanup()

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- load generation ------------------------------------------------------------------------


class Load:
    """Requests at a fixed concurrency against one target, with one pooled client."""

    def __init__(self, base_url: str, api_key: str | None, *, repeat_texts: bool) -> None:
        self.url = f"{base_url}/v1/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.gateway = api_key is not None
        self.repeat_texts = repeat_texts
        self._ids = itertools.count(1)

    def _body(self) -> dict[str, Any]:
        n = next(self._ids)
        prompt = PROMPTS[n % len(PROMPTS)]
        if not self.repeat_texts:
            prompt = f"Question {n}: {prompt}"
        return {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}

    async def _one(self, client: httpx.AsyncClient) -> Sample:
        body = self._body()
        start = time.perf_counter()
        try:
            response = await client.post(self.url, json=body)
        except Exception as exc:  # any failure of the request is an error, never a crash
            now = time.perf_counter()
            return Sample((now - start) * 1000, type(exc).__name__, now, error=str(exc)[:200])
        now = time.perf_counter()
        sample = Sample((now - start) * 1000, response.status_code, now)
        if response.status_code != 200:
            sample.error = response.text[:300]
        elif self.gateway:
            sample.timing = _server_timing(response.headers.get("server-timing", ""))
            with contextlib.suppress(ValueError, AttributeError):
                extension = response.json().get("safestack") or {}
                if extension.get("blocked"):
                    sample.layer = str(extension.get("layer"))
        return sample

    async def run(
        self,
        requests: int,
        concurrency: int,
        warmup: int,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[Sample], float]:
        """Warm-up requests (not counted), then ``requests`` requests; (samples, wall seconds)."""
        limits = httpx.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=4.0,  # the gateway closes idle connections after 5 s
        )
        async with httpx.AsyncClient(
            limits=limits, timeout=httpx.Timeout(60.0), headers=self.headers, trust_env=False
        ) as client:

            async def drive(
                count: int, sink: list[Sample], report: Callable[[int], None] | None = None
            ) -> None:
                todo = iter(range(count))

                async def worker() -> None:
                    for _ in todo:
                        sink.append(await self._one(client))
                        if report is not None:
                            report(len(sink))

                await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))

            await drive(warmup, [])
            samples: list[Sample] = []
            started = time.perf_counter()
            await drive(requests, samples, progress)
            return samples, time.perf_counter() - started


def summarize(samples: list[Sample], wall_s: float) -> dict[str, Any]:
    ok = [s for s in samples if s.status == 200]
    errors = Counter(str(s.status) for s in samples if s.status != 200)
    latency = [s.latency_ms for s in ok]
    out: dict[str, Any] = {
        "requests": len(samples),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_examples": sorted({s.error or "" for s in samples if s.status != 200})[:3],
        "error_latency_ms": sorted(round(s.latency_ms) for s in samples if s.status != 200)[:50],
        "wall_s": round(wall_s, 2),
        "rps": round(len(samples) / wall_s, 1) if wall_s else None,
        "p50_ms": _pct(latency, 50),
        "p99_ms": _pct(latency, 99),
        "max_ms": max(latency, default=None),
    }
    timed = [s for s in ok if "added" in s.timing]
    if timed:
        overhead = [s.latency_ms - s.timing["added"] - s.timing.get("model", 0.0) for s in timed]
        layers = sorted({k for s in timed for k in s.timing})
        out.update(
            {
                "timed": len(timed),
                "added_p50_ms": _pct([s.timing["added"] for s in timed], 50),
                "added_p99_ms": _pct([s.timing["added"] for s in timed], 99),
                "model_p50_ms": _pct([s.timing["model"] for s in timed if "model" in s.timing], 50),
                "overhead_p50_ms": _pct(overhead, 50),
                "overhead_p99_ms": _pct(overhead, 99),
                "layer_p50_ms": {
                    k: _pct([s.timing[k] for s in timed if k in s.timing], 50) for k in layers
                },
                "blocked": dict(Counter(s.layer for s in ok if s.layer)),
            }
        )
    return out


def slices(samples: list[Sample], started: float, parts: int = 10) -> list[dict[str, Any]]:
    """The run cut into ``parts`` consecutive slices by completion: throughput, p50, errors."""
    ordered = sorted(samples, key=lambda s: s.done)
    size = max(1, len(ordered) // parts)
    out = []
    previous = started
    for i in range(0, len(ordered), size):
        chunk = ordered[i : i + size]
        end = chunk[-1].done
        ok = [s.latency_ms for s in chunk if s.status == 200]
        out.append(
            {
                "requests": len(chunk),
                "rps": round(len(chunk) / max(end - previous, 1e-9), 1),
                "p50_ms": _pct(ok, 50),
                "p99_ms": _pct(ok, 99),
                "errors": sum(s.status != 200 for s in chunk),
            }
        )
        previous = end
    return out


# -- the report -----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def tables(result: dict[str, Any]) -> list[str]:
    lines = [
        "| path | concurrency | requests | errors | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in result["levels"]:
        for label, key in (("upstream directly", "upstream"), ("through the gateway", "gateway")):
            r = level[key]
            lines.append(
                f"| {label} | {level['concurrency']} | {r['requests']} | {r['errors']} | "
                f"{r['rps']:.1f} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} |"
            )
    soak = result.get("soak")
    if soak:
        lines.append(
            f"| through the gateway, soak | {soak['concurrency']} | {soak['requests']} | "
            f"{soak['errors']} | {soak['rps']:.1f} | {_ms(soak['p50_ms'])} | "
            f"{_ms(soak['p99_ms'])} |"
        )
    lines += [
        "",
        "| concurrency | gateway overhead p50 ms | overhead p99 ms | classifiers (`added`) p50 ms "
        "| gateway p50 − upstream p50 ms |",
        "|---|---|---|---|---|",
    ]
    for level in result["levels"]:
        g, u = level["gateway"], level["upstream"]
        diff = None if g["p50_ms"] is None or u["p50_ms"] is None else g["p50_ms"] - u["p50_ms"]
        lines.append(
            f"| {level['concurrency']} | {_ms(g.get('overhead_p50_ms'))} | "
            f"{_ms(g.get('overhead_p99_ms'))} | {_ms(g.get('added_p50_ms'))} | {_ms(diff)} |"
        )
    return lines


def section(result: dict[str, Any]) -> list[str]:
    m = result["machine"]
    levels = {lv["concurrency"]: lv for lv in result["levels"]}
    soak = result.get("soak")
    makefile = HERE.parent / "Makefile"
    in_make = makefile.exists() and "bench/gateway.py" in makefile.read_text()
    how = (
        "`make bench`, or `python bench/gateway.py --out BENCHMARKS.md`"
        if in_make
        else "`python bench/gateway.py --out BENCHMARKS.md`"
    )
    lines = [
        f"`bench/gateway.py` ({how}); {result['date']}, {m['machine']}, {m['cores']} cores, "
        f"Python {m['python']}, one run of {result['duration_s']:.0f} s. The upstream is a "
        "minimal OpenAI-compatible server (`bench/_upstream.py`: Starlette on uvicorn, a fixed "
        f"{result['answer_chars']}-character benign answer, no delay); the gateway is "
        "`safestack serve` with the default stack "
        "(`system_mitigations_and_model_refusals`: input classifier, refusal check, output "
        f"classifier, monitor when uncertain), a SQLite store and `workers: {result['workers']}`, "
        "for an `adult` key. Load: asyncio + httpx, one client whose connection pool has as many "
        "connections as the concurrency, each request sent as soon as one finishes; "
        f"{result['warmup']} warm-up requests before every level, not counted. Load generator, "
        "upstream and gateway share the same cores. Latency p50/p99 over the responses with "
        "status 200; errors = any other status or a failed request.",
        "",
        *tables(result),
        "",
        "Gateway overhead = client-side latency − `Server-Timing` `added` (every safety layer) "
        "− `model` (the upstream call as the stack saw it): HTTP parsing, authentication (an "
        "account lookup in the store), waiting for a worker thread, recording the decision, "
        "JSON. `added` is wall-clock time of the layers, so under load it also grows with CPU "
        "contention.",
        "",
        "Notes:",
        "",
    ]
    one = levels.get(1)
    if one and one["gateway"].get("overhead_p50_ms") is not None:
        over = one["gateway"]["overhead_p50_ms"]
        verdict = "**Met**" if over <= TARGET_OVERHEAD_P50_MS else "**Not met**"
        lines.append(
            f"- Target: gateway overhead ≤ {TARGET_OVERHEAD_P50_MS:g} ms p50 at concurrency 1. "
            f"{verdict}: {over:.1f} ms (p99 {_ms(one['gateway']['overhead_p99_ms'])} ms). The "
            "loopback HTTP round trip alone costs about the upstream-direct p50 "
            f"({_ms(one['upstream']['p50_ms'])} ms); the rest is the gateway's own per-request "
            "work outside the layers."
        )
    if soak:
        mins = soak["wall_s"] / 60
        verdict = "**Met**" if soak["errors"] == 0 else "**Not met**"
        kinds = ", ".join(f"{k}: {v}" for k, v in soak["error_kinds"].items())
        kinds = f" ({kinds})" if kinds else ""
        parts = soak["slices"]
        rps = f"{min(s['rps'] for s in parts):.1f}–{max(s['rps'] for s in parts):.1f}"
        first, last = _ms(parts[0]["p50_ms"]), _ms(parts[-1]["p50_ms"])
        rss = (
            f"{_ms(soak.get('rss_before_mb'))} MB before, {_ms(soak.get('rss_after_mb'))} MB after"
        )
        lines.append(
            f"- Soak: {soak['requests']:,} requests at concurrency {soak['concurrency']} in "
            f"{soak['wall_s']:.0f} s ({mins:.1f} min), {soak['errors']} errors{kinds}; target "
            f"zero errors: {verdict}. Throughput per tenth of the run: {rps} req/s; p50 in the "
            f"first tenth {first} ms, in the last {last} ms; max latency "
            f"{_ms(soak['max_ms'])} ms. Gateway memory (RSS): {rss}."
        )
    top = max(levels)
    gw = levels[top]["gateway"]
    if one and one["gateway"].get("added_p50_ms"):
        busy = [c for c in sorted(levels) if c > 1 and c <= result["workers"]]
        contention = ""
        if busy:
            c = busy[0]
            g = levels[c]["gateway"]
            contention = (
                f" At concurrency {c} no request waits for one of the {result['workers']} "
                f"worker threads, yet the overhead is {_ms(g['overhead_p50_ms'])} ms p50 and "
                f"`added` {_ms(g['added_p50_ms'])} ms (vs {_ms(one['gateway']['added_p50_ms'])} "
                "at concurrency 1): the cores are saturated, inference threads share them, and "
                "the event loop that parses requests and writes responses waits its turn."
            )
        lines.append(
            f"- Throughput is bounded by classifier inference on {m['cores']} cores, not by the "
            f"HTTP path: at concurrency {top} the upstream alone serves "
            f"{levels[top]['upstream']['rps']:.0f} req/s, the gateway {gw['rps']:.0f} req/s; one "
            f"request's safety layers take {one['gateway']['added_p50_ms']:.0f} ms (p50, "
            "concurrency 1) of mostly-CPU work (MiniLM forward passes over the prompt and the "
            "answer). Past the cores, more concurrency only queues: latency grows with it, "
            "throughput does not, and the waiting shows up in the overhead and `added` columns."
            f"{contention}"
        )
    lines.append(
        "- The upstream-direct rows are a floor for the HTTP path on this machine, not the "
        "upstream's capacity: the Python load generator (httpx) and the upstream share the same "
        "cores, so at high concurrency their latency is queueing in these two Python processes, "
        "not the upstream's work per request."
    )
    blocked = Counter[str]()
    for lv in result["levels"]:
        blocked.update(lv["gateway"].get("blocked", {}))
    if soak:
        blocked.update(soak.get("blocked", {}))
    total = sum(lv["gateway"]["requests"] for lv in result["levels"]) + (
        soak["requests"] if soak else 0
    )
    where = ", ".join(f"{k}: {v}" for k, v in sorted(blocked.items()))
    lines.append(
        '- Prompts are 20 benign multi-word questions. Very short texts ("hi") are false '
        "positives of the prompt classifier, so one-word prompts are avoided: a blocked request "
        "skips the model and the output layer and would flatter the latency. Blocked here "
        f"(false positives, answered with status 200 and a refusal): {sum(blocked.values())} of "
        f"{total:,} gateway requests{f' ({where})' if where else ''}. The gateway's strike "
        "policy is on (its default): three high- or critical-severity blocks suspend the "
        "account, after which every request is a 403 error."
    )
    if result["repeat_texts"]:
        lines.append(
            "- Run with `--repeat-texts`: prompts and answers repeat, so the embedder's cache "
            "of recent texts serves most embeddings and `added` is far below a real workload's."
        )
    else:
        lines.append(
            '- Every prompt is numbered ("Question 17: …") and every answer ends with its own '
            'reply number ("Reply 17."), because the embedder caches recent texts\' embeddings: '
            "with repeated texts this benchmark would time the cache, not the classifiers "
            "(`--repeat-texts` shows that case). The numbering is a prefix on purpose: with a "
            'trailing "(request #17)" some benign prompts of an earlier list were false '
            "positives every time, one as `weapons_cbrn` (critical), and a trial run's account "
            "was suspended by the strike policy."
        )
    lines.append(
        "- Seen once, not in this run (2026-11-23, the same defaults on this machine while other "
        "work used 0.86 of its 2 cores): the soak had 33 errors in 10,000, all 503 "
        "`store_unavailable` — SQLite `database is locked` after its 5 s busy timeout, in bursts "
        "(0–7 per 1,000 requests). Most likely when recording the decision, the only store "
        "write for a request that is not blocked (authentication is a read, which WAL mode does "
        "not block); that runs after the model answered, so such a request has already cost an "
        "upstream call when it fails."
    )
    cpu = result.get("cpu")
    if cpu:
        lines.append(
            f"- CPU during the measurement: the machine was busy {cpu['machine_busy_cores']:.2f} "
            f"of {m['cores']} cores on average, this benchmark's three processes "
            f"{cpu['benchmark_cores']:.2f}, other processes {cpu['other_processes_cores']:.2f} "
            f"(load average {cpu['load_average_before']:.2f} at the start)"
            + (
                ": the machine was shared with other work, so these numbers are pessimistic."
                if cpu["other_processes_cores"] >= 0.1
                else "."
            )
        )
    lines.append(
        f"- The gateway took {result['gateway_ready_s']:.1f} s from start to `/readyz` 200 "
        "(classifiers load in the background)."
    )
    return lines


# -- main -----------------------------------------------------------------------------------


def _levels(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _progress(label: str, total: int) -> Callable[[int], None] | None:
    if not sys.stderr.isatty():
        return None
    step = max(1, total // 10)

    def report(done: int) -> None:
        if done % step == 0 or done == total:
            print(f"\r  {label}: {done}/{total}", end="", file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)

    return report


async def measure(servers: Servers, key: str, args: argparse.Namespace) -> dict[str, Any]:
    upstream = Load(servers.upstream_url, None, repeat_texts=args.repeat_texts)
    gateway = Load(servers.gateway_url, key, repeat_texts=args.repeat_texts)
    levels = []
    for concurrency, requests in zip(args.concurrency, args.requests_per_level, strict=True):
        level: dict[str, Any] = {"concurrency": concurrency}
        for name, load in (("upstream", upstream), ("gateway", gateway)):
            samples, wall = await load.run(
                requests, concurrency, args.warmup, _progress(f"{name} c={concurrency}", requests)
            )
            level[name] = summarize(samples, wall)
            print(
                f"  {name} c={concurrency}: {level[name]['rps']:.1f} req/s, p50 "
                f"{_ms(level[name]['p50_ms'])} ms, errors {level[name]['errors']}",
                file=sys.stderr,
            )
        levels.append(level)
    result: dict[str, Any] = {"levels": levels}
    if args.soak:
        rss_before = _rss_mb(servers.gateway_pid)
        started = time.perf_counter()
        samples, wall = await gateway.run(
            args.soak, args.soak_concurrency, args.warmup, _progress("soak", args.soak)
        )
        soak = summarize(samples, wall)
        soak.update(
            concurrency=args.soak_concurrency,
            slices=slices(samples, started),
            rss_before_mb=rss_before,
            rss_after_mb=_rss_mb(servers.gateway_pid),
        )
        result["soak"] = soak
    return result


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=_levels, default=[1, 10, 100], help="e.g. 1,10,100")
    parser.add_argument(
        "--requests-per-level",
        type=_levels,
        default=[300, 600, 1000],
        help="measured requests at each concurrency, per target (default 300,600,1000)",
    )
    parser.add_argument("--warmup", type=int, default=20, help="uncounted requests per level")
    parser.add_argument(
        "--soak", type=int, default=10_000, help="requests through the gateway (0: no soak)"
    )
    parser.add_argument("--soak-concurrency", type=int, default=100)
    parser.add_argument("--workers", type=int, default=16, help="the gateway's `workers`")
    parser.add_argument(
        "--repeat-texts",
        action="store_true",
        help="send repeated prompts and answers (lets the embedder's cache answer)",
    )
    parser.add_argument("--out", type=Path, help="write the section into this Markdown file")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if len(args.requests_per_level) == 1:
        args.requests_per_level *= len(args.concurrency)
    if len(args.requests_per_level) != len(args.concurrency):
        parser.error("--requests-per-level needs one count, or one per --concurrency level")

    signal.signal(signal.SIGTERM, _interrupt)  # clean up the servers on SIGTERM as on Ctrl-C
    started = time.monotonic()
    with Servers(repeat_texts=args.repeat_texts, workers=args.workers) as servers:
        servers.start()
        print(f"gateway ready in {servers.gateway_ready_s:.1f} s", file=sys.stderr)
        key = servers.api_key()
        load_before = os.getloadavg()
        busy, own, began = _busy_cpu_s(), servers.own_cpu_s(), time.monotonic()
        result = asyncio.run(measure(servers, key, args))
        window = time.monotonic() - began
        if busy is not None:
            busy_after = _busy_cpu_s() or busy
            machine = (busy_after - busy) / window
            ours = (servers.own_cpu_s() - own) / window
            result["cpu"] = {
                "window_s": round(window, 1),
                "machine_busy_cores": round(machine, 2),
                "benchmark_cores": round(ours, 2),
                "other_processes_cores": round(max(machine - ours, 0.0), 2),
                "load_average_before": round(load_before[0], 2),
            }
        problems = [line for line in servers.log_lines("gateway") if _PROBLEM.search(line)]
        result["gateway_log_problems"] = {
            "count": len(problems),
            "examples": list(_first_kinds(problems)),
        }
        result["gateway_ready_s"] = round(servers.gateway_ready_s, 1)
    from _upstream import ANSWER

    result.update(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M+00:00"),
        machine={
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        duration_s=round(time.monotonic() - started, 1),
        warmup=args.warmup,
        workers=args.workers,
        repeat_texts=args.repeat_texts,
        answer_chars=len(ANSWER),
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(tables(result)))
        print(
            f"\ntotal {result['duration_s']:.0f} s; gateway log warnings/errors: "
            f"{result['gateway_log_problems']['count']}"
        )
        runs = [(f"c={lv['concurrency']} {k}", lv[k]) for lv in result["levels"] for k in lv]
        for name, r in [*runs, ("soak", result.get("soak"))]:
            if isinstance(r, dict) and r.get("errors"):
                print(f"{name}: {r['error_kinds']}: {r['error_examples']}")
        for line in result["gateway_log_problems"]["examples"]:
            print(f"gateway log: {line}")
    if args.out:
        from stack import write_section  # bench/stack.py

        write_section(args.out, SECTION, section(result))


def _first_kinds(lines: list[str], limit: int = 5) -> Iterator[str]:
    """A few log lines with distinct messages (the timestamp stripped)."""
    seen: set[str] = set()
    for line in lines:
        message = line.split(" ", 2)[-1]
        kind = message[:60]
        if kind not in seen:
            seen.add(kind)
            yield line[:300]
            if len(seen) >= limit:
                return


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
