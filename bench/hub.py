"""The hub: ingest rate over HTTP, and the posture page's queries over a year of records.

(a) ``vigil serve`` runs as its own process on loopback; batches of per-second posture records
are POSTed to ``/api/ingest`` as the pipeline's hub sink sends them (100 events per batch, the
outbox's default batch size; 500 and 1000 for comparison), one after another. Goal: at least
5,000 records/s.

(b) One year of per-second records of one device (31.5 million rows) is written straight into
an SQLite records database with ``executemany`` in chunks; the roll-ups then catch up once.
The hub serves that database and answers the posture page's queries for the whole year:
``/api/posture/summary`` and every page of ``/api/records?bucket=hour``. Goal: under 300 ms at
the median. For scale, the same summary is computed from the raw rows
(:func:`vigil.report.summary.summarize_posture`) over one week.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import Timing, save_results, update_doc

DEVICE = "desk-1"
YEAR_START = datetime(2025, 1, 6, tzinfo=UTC).timestamp()  # a Monday
YEAR_SECONDS = 365 * 86_400
ZONE = "Europe/Berlin"
BATCH_SIZES = (100, 500, 1000)
BATCHES = 60
QUERY_ROUNDS = 15
CHUNK_SECONDS = 86_400
RAW_SPAN_SECONDS = 7 * 86_400


@contextmanager
def serving(home: Path, *args: str) -> Iterator[str]:
    """Run ``vigil serve`` in its own process; yield its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "VIGIL_HOME": str(home)}
    command = [sys.executable, "-m", "vigil.cli.main", "-q", "serve", "--port", str(port), *args]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("vigil serve did not start")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def record_event(number: int, ts: float) -> dict[str, Any]:
    """One per-second record as the hub sink sends it (``Event.to_dict()`` plus ``id``)."""
    return {
        "id": f"bench-{number}",
        "kind": "record",
        "app": "posture",
        "device_id": DEVICE,
        "timestamp": ts,
        "time": datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds"),
        "person_present": True,
        "state": "sitting" if number % 600 < 500 else "standing",
        "hunched": number % 7 == 0,
        "side": "left",
        "torso_angle": 12.3,
        "neck_angle": 21.5,
        "thigh_angle": 4.2,
        "knee_angle": 92.0,
        "confidence": 0.91,
        "fps": 15.0,
        "sitting_seconds": float(number % 600),
        "hunched_seconds": 12.0,
    }


def ingest_rates(url: str) -> dict[int, dict[str, float]]:
    """Per batch size: latency and records/s per batch (median, p95), and the overall rate."""
    results: dict[int, dict[str, float]] = {}
    number = 0
    start = time.time() - 30 * 86_400
    with httpx.Client(base_url=url, timeout=60) as client:
        for size in BATCH_SIZES:
            seconds = []
            for _ in range(BATCHES):
                events = [record_event(number + i, start + number + i) for i in range(size)]
                number += size
                body = {"device_id": DEVICE, "events": events}
                began = time.perf_counter()
                response = client.post("/api/ingest", json=body)
                seconds.append(time.perf_counter() - began)
                assert response.json() == {"accepted": size, "duplicates": 0}, response.text
            timing = Timing.of(seconds)
            rates = [size / s for s in seconds]
            results[size] = {
                "median_ms": timing.median_ms,
                "p95_ms": timing.p95_ms,
                "median_records_per_s": statistics.median(rates),
                "p5_records_per_s": float(np.percentile(rates, 5)),
                "overall_records_per_s": size * len(seconds) / sum(seconds),
            }
    return results


def generate_year(path: Path) -> int:
    """Write a year of per-second records of one device into a new records database.

    Each day: away at night, then working hours of sitting spells (with short pauses and
    hunched stretches) and standing breaks, as the posture tracker records them.
    """
    from vigil.hub.db import HubDatabase

    HubDatabase(f"sqlite:///{path}").open().close()  # the tables, as the hub makes them
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    rng = np.random.default_rng(2025)
    written = 0
    insert = (
        "INSERT INTO posture_records (device_id, ts, person_present, state, hunched, side, "
        "torso_angle, neck_angle, thigh_angle, knee_angle, confidence, fps, sitting_seconds, "
        "hunched_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for day in range(YEAR_SECONDS // CHUNK_SECONDS):
        rows = day_rows(YEAR_START + day * CHUNK_SECONDS, rng)
        connection.executemany(insert, rows)
        connection.commit()
        written += CHUNK_SECONDS
    connection.close()
    return written


def day_rows(start: float, rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
    """The 86,400 records of one day, as rows of the posture_records table."""
    activity = np.full(CHUNK_SECONDS, 3, np.int64)  # away
    second = 8 * 3600 + int(rng.integers(0, 3600))
    end = 18 * 3600 + int(rng.integers(0, 3600))
    while second < end:
        sitting = int(rng.integers(600, 3600))
        activity[second : second + sitting] = 0
        for _ in range(int(rng.integers(0, 4))):  # short pauses that do not end a streak
            pause = second + int(rng.integers(0, sitting))
            activity[pause : pause + int(rng.integers(5, 50))] = 1
        second += sitting
        standing = int(rng.integers(60, 900))
        activity[second : second + standing] = rng.choice([1, 2, 3], p=[0.8, 0.1, 0.1])
        second += standing
    hunched = (activity == 0) & (np.sin(np.arange(CHUNK_SECONDS) / 400.0) > 0.6)
    present = activity != 3
    states = np.array(["sitting", "standing", "unknown", "unknown"])[activity]
    ts = start + np.arange(CHUNK_SECONDS, dtype=np.float64)
    angle = np.where(present, 10.0 + 5.0 * hunched, np.nan)
    columns = (
        [DEVICE] * CHUNK_SECONDS,
        ts.tolist(),
        present.tolist(),
        states.tolist(),
        hunched.tolist(),
        np.where(present, "left", None).tolist(),
        [None if np.isnan(a) else a for a in angle.tolist()],
        [None] * CHUNK_SECONDS,
        [None] * CHUNK_SECONDS,
        [None] * CHUNK_SECONDS,
        np.where(present, 0.9, None).tolist(),
        [15.0] * CHUNK_SECONDS,
        [None] * CHUNK_SECONDS,
        [None] * CHUNK_SECONDS,
    )
    return zip(*columns, strict=True)


def catch_up(path: Path) -> int:
    """Roll the whole year up, as the hub does when it first opens the database."""
    from vigil.hub.db import HubDatabase
    from vigil.hub.rollups import Rollups

    database = HubDatabase(f"sqlite:///{path}").open()
    try:
        return Rollups(database).catch_up()
    finally:
        database.close()


def query_latencies(url: str) -> dict[str, Timing]:
    """The posture page's queries over the whole year, each ``QUERY_ROUNDS`` times."""
    year = {"device_id": DEVICE, "since": YEAR_START, "until": YEAR_START + YEAR_SECONDS}
    summary, first_page, all_pages = [], [], []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(QUERY_ROUNDS):
            began = time.perf_counter()
            answer = client.get("/api/posture/summary", params={**year, "tz": ZONE})
            summary.append(time.perf_counter() - began)
            assert answer.status_code == 200, answer.text
            pages, page_seconds = hour_pages(client, year)
            first_page.append(page_seconds[0])
            all_pages.append(sum(page_seconds))
            assert sum(len(p) for p in pages) >= YEAR_SECONDS / 86_400 * 8  # working hours
    return {
        "summary": Timing.of(summary),
        "hour buckets, first page": Timing.of(first_page),
        "hour buckets, all pages": Timing.of(all_pages),
    }


def hour_pages(client: httpx.Client, period: dict[str, Any]) -> tuple[list[Any], list[float]]:
    params: dict[str, Any] = {**period, "bucket": "hour", "tz": ZONE, "limit": 1000}
    pages, seconds = [], []
    while True:
        began = time.perf_counter()
        page = client.get("/api/records", params=params).json()
        seconds.append(time.perf_counter() - began)
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages, seconds
        params["cursor"] = page["next_cursor"]


def raw_week(path: Path, url: str) -> dict[str, Any]:
    """The summary of one week: from the raw rows in Python, and from the hub."""
    from zoneinfo import ZoneInfo

    from vigil.report.summary import summarize_posture
    from vigil.storage.records import RecordStore

    since = YEAR_START + 180 * 86_400
    until = since + RAW_SPAN_SECONDS
    store = RecordStore(f"sqlite:///{path}")
    raw = []
    try:
        for _ in range(3):
            began = time.perf_counter()
            rows = store.posture_records(DEVICE, since, until)
            summarize_posture(rows, since=since, until=until, tz=ZoneInfo(ZONE))
            raw.append(time.perf_counter() - began)
    finally:
        store.close()
    hub = []
    params = {"device_id": DEVICE, "since": since, "until": until, "tz": ZONE}
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(QUERY_ROUNDS):
            began = time.perf_counter()
            assert client.get("/api/posture/summary", params=params).status_code == 200
            hub.append(time.perf_counter() - began)
    return {"rows": len(rows), "raw": Timing.of(raw), "hub": Timing.of(hub)}


def render(
    ingest: dict[int, dict[str, float]],
    generated: tuple[int, float, float, float],
    queries: dict[str, Timing],
    week: dict[str, Any],
) -> str:
    rows, generate_seconds, catch_up_seconds, size_gb = generated
    lines = [
        "### (a) Ingest over HTTP",
        "",
        "`vigil serve` in its own process on loopback (SQLite, no login); one client POSTs "
        f"{BATCHES} batches of per-second posture records per size, one after another, as the "
        "hub sink does (100 events per batch is the outbox's default batch size). Times include "
        "encoding the JSON in the client.",
        "",
        "| events per batch | median ms/batch | p95 ms/batch | median records/s | "
        "records/s at p95 | overall records/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, figures in ingest.items():
        lines.append(
            f"| {size} | {figures['median_ms']:.1f} | {figures['p95_ms']:.1f} | "
            f"{figures['median_records_per_s']:,.0f} | {figures['p5_records_per_s']:,.0f} | "
            f"{figures['overall_records_per_s']:,.0f} |"
        )
    at_100 = ingest[100]["median_records_per_s"]
    lines += [
        "",
        "Goal >= 5,000 records/s with 100-event batches: "
        f"**{'met' if at_100 >= 5000 else 'not met'}** ({at_100:,.0f} records/s at the median).",
        "",
        "### (b) The posture page's queries over a year",
        "",
        f"{rows:,} per-second records of one device ({size_gb:.1f} GB of SQLite), written with "
        f"`executemany` one day per chunk in {generate_seconds:.0f} s; the first catch-up of "
        f"the roll-ups took {catch_up_seconds:.0f} s ({rows / catch_up_seconds:,.0f} records/s; "
        "once, when the hub first meets the records). Then `vigil serve` answered, for the "
        f"whole year in {ZONE}, {QUERY_ROUNDS} rounds each:",
        "",
        "| query | median ms | p95 ms |",
        "|---|---:|---:|",
    ]
    for name, timing in queries.items():
        lines.append(f"| {name} | {timing.median_ms:.0f} | {timing.p95_ms:.0f} |")
    summary = queries["summary"].median_ms
    raw, hub = week["raw"], week["hub"]
    lines += [
        "",
        f"Goal: the summary under 300 ms at the median: **{'met' if summary < 300 else 'not met'}**"
        f" ({summary:.0f} ms). `/api/records?bucket=hour` takes 1,000 hours per page, so a year "
        "is 9 pages.",
        "",
        f"For scale, one week ({week['rows']:,} rows): the summary computed from the raw rows "
        f"(read with `RecordStore`, then `summarize_posture`) took {raw.median_ms:,.0f} ms at the "
        f"median; the hub answered the same week in {hub.median_ms:.0f} ms. A year from raw rows "
        f"would be about {raw.median_ms * 52 / 1000:.0f} s.",
    ]
    return "\n".join(lines)


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="vigil-hub-bench-") as tmp:
        folder = Path(tmp)
        with serving(folder / "ingest-home") as url:
            ingest = ingest_rates(url)
        print(f"ingest: {ingest}", flush=True)
        database = folder / "year.db"
        began = time.perf_counter()
        rows = generate_year(database)
        generate_seconds = time.perf_counter() - began
        print(f"generated {rows:,} records in {generate_seconds:.0f} s", flush=True)
        began = time.perf_counter()
        catch_up(database)
        catch_up_seconds = time.perf_counter() - began
        print(f"first catch-up: {catch_up_seconds:.0f} s", flush=True)
        size_gb = database.stat().st_size / 1e9
        with serving(folder / "query-home", "--database", f"sqlite:///{database}") as url:
            queries = query_latencies(url)
            week = raw_week(database, url)
        shutil.rmtree(folder, ignore_errors=True)
    text = render(ingest, (rows, generate_seconds, catch_up_seconds, size_gb), queries, week)
    print(text)
    update_doc("hub", "The hub: ingest and posture queries (`bench/hub.py`)", text)
    payload: dict[str, object] = {
        "ingest": ingest,
        "generate_seconds": generate_seconds,
        "catch_up_seconds": catch_up_seconds,
        "queries": queries,
        "week": week,
    }
    save_results("hub", payload)
    return payload


if __name__ == "__main__":
    main()
