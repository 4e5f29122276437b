"""Load benchmark of the HTTP service on the ML-100K Caser bundle, over loopback.

Starts a real `seqrec serve` process on 127.0.0.1, drives POST /recommend from CLIENTS threads
(stdlib http.client, keep-alive) for at most --seconds and --max-requests, while one more client
posts event batches to POST /events the whole time. Prints requests/s, p50/p99 latency, errors,
and the in-process latency of `recommend` for one user.

    PYTHONPATH=src python benchmarks/bench_service.py --bundle runs/d2l   # or: trains it first
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "ml-100k"


def ensure_bundle(folder: Path, data_dir: Path) -> Path:
    if not (folder / "bundle" / "bundle.json").is_file() and not (folder / "bundle.json").is_file():
        print(f"training the d2l Caser bundle into {folder} ...", flush=True)
        subprocess.run([sys.executable, "-m", "seqrec", "train", "--preset", "d2l", "--data-dir", str(data_dir),
                        "--out", str(folder), "--no-progress"], check=True, env=_env())
    return folder


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(REPO / "src")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle: Path, events: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "seqrec", "serve", "--bundle", str(bundle), "--port", str(port),
                                 "--events", str(events)], env=_env(), stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status, _ = request(http.client.HTTPConnection("127.0.0.1", port, timeout=2), "GET", "/health")
            if status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    payload = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def recommend_client(port: int, users: np.ndarray, stop: threading.Event, budget: list[int],
                     lock: threading.Lock, latencies: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for user in users.tolist():
        with lock:
            if stop.is_set() or budget[0] <= 0:
                return
            budget[0] -= 1
        started = time.perf_counter()
        try:
            status, body = request(conn, "POST", "/recommend", {"user": user, "k": 10})
        except (OSError, http.client.HTTPException) as err:
            errors.append(repr(err))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append(time.perf_counter() - started)
        if status != 200:
            errors.append(f"{status} {body[:200]!r}")


def event_client(port: int, users: np.ndarray, items: np.ndarray, stop: threading.Event, sent: list[int],
                 errors: list[str], batch: int, pause: float) -> None:
    conn, rng, ts = http.client.HTTPConnection("127.0.0.1", port, timeout=10), np.random.default_rng(1), 2 * 10**9
    while not stop.is_set():
        events = [{"user": int(u), "item": int(i), "timestamp": ts + n}
                  for n, (u, i) in enumerate(zip(rng.choice(users, batch), rng.choice(items, batch), strict=True))]
        ts += batch
        status, body = request(conn, "POST", "/events", events)
        if status != 200:
            errors.append(f"events {status} {body[:200]!r}")
        else:
            sent[0] += batch
        time.sleep(pause)


def in_process_latency(bundle_dir: Path, repeats: int) -> list[float]:
    from seqrec.bundle import load_bundle
    from seqrec.recommend import recommend

    torch.set_num_threads(1)
    bundle = load_bundle(bundle_dir)
    users = bundle.user_map.external.tolist()
    recommend(bundle, [users[0]], k=10)
    out = []
    for n in range(repeats):
        started = time.perf_counter()
        recommend(bundle, [users[n % len(users)]], k=10)
        out.append(time.perf_counter() - started)
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=REPO / "runs" / "bench-d2l",
                        help="bundle or run folder (trained with the d2l preset when missing)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SEQREC_DATA_DIR", DATA)))
    parser.add_argument("--seconds", type=float, default=20.0, help="upper bound on the load phase")
    parser.add_argument("--max-requests", type=int, default=20_000, help="upper bound on /recommend requests")
    parser.add_argument("--clients", type=int, default=4, help="concurrent /recommend clients (threads)")
    parser.add_argument("--event-batch", type=int, default=5)
    parser.add_argument("--event-pause", type=float, default=0.02, help="seconds between event batches")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    folder = ensure_bundle(args.bundle, args.data_dir)
    from seqrec.bundle import load_bundle
    bundle = load_bundle(folder)
    users, items = bundle.user_map.external, bundle.item_map.external
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = start_server(folder, Path(tmp) / "events.sqlite", port, Path(tmp) / "server.log")
        try:
            rng = np.random.default_rng(0)
            request(http.client.HTTPConnection("127.0.0.1", port), "POST", "/recommend", {"user": int(users[0])})
            stop, lock, budget = threading.Event(), threading.Lock(), [args.max_requests]
            latencies: list[float] = []
            errors: list[str] = []
            sent = [0]
            writer = threading.Thread(target=event_client, args=(port, users, items, stop, sent, errors,
                                                                 args.event_batch, args.event_pause))
            clients = [threading.Thread(target=recommend_client, args=(port, rng.choice(users, args.max_requests),
                                                                       stop, budget, lock, latencies, errors))
                       for _ in range(args.clients)]
            started = time.perf_counter()
            writer.start()
            for c in clients:
                c.start()
            timer = threading.Timer(args.seconds, stop.set)
            timer.start()
            for c in clients:
                c.join()
            elapsed = time.perf_counter() - started
            stop.set()
            timer.cancel()
            writer.join()
            _, body = request(http.client.HTTPConnection("127.0.0.1", port), "GET", "/health")
            stored = json.loads(body)["events"]
        finally:
            proc.kill()
            proc.wait()
    local = in_process_latency(folder, 2000)
    print(f"bundle: {folder} ({bundle.num_users} users, {bundle.num_items} items, L={bundle.L})")
    print(f"cpus: {os.cpu_count()}, 1-minute load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} "
          "(above ~1 means other processes shared the CPU)")
    print(f"/recommend: {len(latencies)} requests in {elapsed:.2f} s from {args.clients} clients = "
          f"{len(latencies) / elapsed:.0f} req/s; latency p50 {percentile(latencies, 50):.2f} ms, "
          f"p99 {percentile(latencies, 99):.2f} ms, max {max(latencies) * 1e3:.2f} ms")
    print(f"/events (concurrent): {sent[0]} events sent, {stored} stored; errors (all requests): {len(errors)}"
          + (f" first: {errors[0]}" if errors else ""))
    print(f"in-process recommend, one user, k=10: p50 {percentile(local, 50):.3f} ms, "
          f"p99 {percentile(local, 99):.3f} ms, mean {statistics.fmean(local) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
