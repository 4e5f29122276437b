"""The HTTP service against a real SQLite file: in-process (TestClient) and as a real `seqrec serve`
process on loopback (concurrent writers, kill -9 and restart)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from seqrec.bundle import load_bundle
from seqrec.errors import SeqrecError
from seqrec.recommend import recommend
from seqrec.service import create_app
from seqrec.service.app import default_events_path
from tests.bundle_fixtures import saved_random_bundle
from tests.conftest import REPO

with warnings.catch_warnings():                 # starlette's note that its TestClient will move off httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return saved_random_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(folder):
    return load_bundle(folder)


@pytest.fixture
def client(folder, tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(folder, tmp_path / "events.sqlite", token=TOKEN)) as c:
        yield c


def _items(response: httpx.Response) -> list:
    assert response.status_code == 200, response.text
    return [r["item"] for r in response.json()["items"]]


def _history(bundle, user) -> list:
    last = bundle.histories.last[bundle.user_index([user])[0]]
    return bundle.item_map.external[last[last > 0] - 1].tolist()


def test_health_describes_the_bundle(client, bundle):
    body = client.get("/health").json()
    assert body | {"seqrec_version": None} == {"status": "ok", "model": "caser", "num_users": 40, "num_items": 30,
                                               "L": 3, "events": 0, "format_version": 1, "seqrec_version": None}
    assert "/recommend" in client.get("/openapi.json").json()["paths"]


def test_recommend_for_known_unknown_and_sequence_queries(client, bundle):
    assert _items(client.post("/recommend", json={"user": 5, "k": 4})) == recommend(bundle, [5], k=4)[0].items
    expected = recommend(bundle, sequences=[[3, 4]], k=4)[0].items
    assert _items(client.post("/recommend", json={"items": [3, 4], "k": 4})) == expected
    assert _items(client.post("/recommend", json={"user": "stranger", "items": [3, 4], "k": 4})) == expected
    both = client.post("/recommend", json={"user": 5, "items": [3, 4, "new-item"], "k": 4})
    assert _items(both) == recommend(bundle, [5], [[3, 4]], k=4)[0].items
    assert both.json()["unknown_items"] == ["new-item"]
    missing = client.post("/recommend", json={"user": "stranger"})
    assert missing.status_code == 404 and "unknown user 'stranger'" in missing.json()["detail"]


def test_an_event_changes_that_users_next_recommendation_at_once(client, bundle):
    before = _items(client.post("/recommend", json={"user": 7, "k": 5}))
    new_item = next(i for i in range(1, 31) if i not in before and i not in _history(bundle, 7))
    posted = client.post("/events", json={"user": 7, "item": new_item, "timestamp": 10**9}, headers=AUTH)
    assert posted.status_code == 200 and posted.json()["stored"] == 1
    after = _items(client.post("/recommend", json={"user": 7, "k": 5}))
    assert after == recommend(bundle, [7], [[*_history(bundle, 7), new_item]], k=5)[0].items
    assert after != before and new_item not in after


def test_new_users_and_unknown_items_are_stored_reported_and_used(client, bundle):
    events = [{"user": "newbie", "item": 12, "timestamp": 2}, {"user": "newbie", "item": 11, "timestamp": 1},
              {"user": "newbie", "item": "not-in-model", "timestamp": 3}]
    body = client.post("/events", json=events, headers=AUTH).json()
    assert body["stored"] == 3 and body["unknown_items"] == ["not-in-model"] and body["new_users"] == ["newbie"]
    got = _items(client.post("/recommend", json={"user": "newbie", "k": 3}))
    assert got == recommend(bundle, sequences=[[11, 12]], k=3)[0].items          # ordered by timestamp
    assert client.get("/health").json()["events"] == 3


@pytest.mark.parametrize(("request_kwargs", "status", "message"), [
    ({"content": b'{"user": 1, "k": ', "headers": {"content-type": "application/json"}}, 400, "malformed JSON"),
    ({"json": {"user": 1, "k": 0}}, 422, "greater than or equal to 1"),
    ({"json": {"user": 1, "k": 1001}}, 422, "less than or equal to 1000"),
    ({"json": {"user": 1, "k": 31}}, 422, "k must be between 1 and the number of items (30), got 31"),
    ({"json": {"user": [1], "k": 3}}, 422, "user"),
    ({"json": {"k": 3}}, 422, "give a user, a non-empty list of recent items, or both"),
    ({"json": {"user": 1, "colour": "red"}}, 422, "Extra inputs are not permitted"),
    ({"json": {"items": list(range(1001))}}, 422, "at most 1000 items"),
])
def test_bad_recommend_requests_get_clear_4xx(client, request_kwargs, status, message):
    response = client.post("/recommend", **request_kwargs)
    assert response.status_code == status
    assert message in json.dumps(response.json()["detail"])
    assert client.post("/recommend", json={"user": 1}).status_code == 200    # still serving


@pytest.mark.parametrize(("body", "headers", "status", "message"), [
    ({"user": 1, "item": 2, "timestamp": 3}, {}, 401, "needs a token"),
    ({"user": 1, "item": 2, "timestamp": 3}, {"Authorization": "Bearer wrong"}, 403, "wrong token"),
    ({"user": 1, "item": 2}, AUTH, 422, "timestamp"),
    ({"user": 1, "item": 2, "timestamp": "soon"}, AUTH, 422, "valid integer"),
    ([], AUTH, 422, "at least 1 item"),
    ([{"user": 1, "item": 2, "timestamp": 3}] * 10_001, AUTH, 422, "at most 10000 items"),
])
def test_bad_event_requests_are_refused_and_nothing_is_stored(client, body, headers, status, message):
    response = client.post("/events", json=body, headers=headers)
    assert response.status_code == status and message in json.dumps(response.json()["detail"])
    assert client.get("/health").json()["events"] == 0
    assert client.post("/events", json={"user": 1, "item": 2, "timestamp": 3}, headers=AUTH).status_code == 200


def test_a_corrupted_or_version_mismatched_bundle_is_refused_at_start(folder, tmp_path):
    bad = shutil.copytree(folder, tmp_path / "bad")
    meta = json.loads((bad / "bundle.json").read_text())
    (bad / "bundle.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(SeqrecError, match="format_version 99"), TestClient(create_app(bad, tmp_path / "e.sqlite")):
        pass
    (bad / "bundle.json").write_text(json.dumps(meta))
    (bad / "weights.safetensors").write_bytes(b"\0" * 10)
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-m", "seqrec", "serve", "--bundle", str(bad), "--port", "9"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"seqrec: error: {bad / 'weights.safetensors'}: sha256 does not "
                                                "match bundle.json; the file is truncated or was modified after saving"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(folder: Path, events: Path, log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A real `seqrec serve` process on a free loopback port, killed on exit."""
    port = _free_port()
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "SEQREC_TOKEN": TOKEN}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "seqrec", "serve", "--bundle", str(folder), "--port", str(port),
                                 "--events", str(events)], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_concurrent_writers_and_kill_restart_keep_every_event_exactly_once(folder, bundle, tmp_path):
    events_db, threads, posts, per_post = tmp_path / "events.sqlite", 12, 10, 3
    sent = [{"user": 1 + (t * 7 + p) % 40, "item": 1 + (t + p * per_post + e) % 30,
             "timestamp": 10**6 + (t * posts + p) * per_post + e}
            for t in range(threads) for p in range(posts) for e in range(per_post)]

    def writer(t: int) -> list[int]:
        ids = []
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            for p in range(posts):
                start = (t * posts + p) * per_post
                response = http.post("/events", json=sent[start:start + per_post])
                assert response.status_code == 200, response.text
                ids += response.json()["ids"]
        return ids

    with serving(folder, events_db, tmp_path / "server.log") as (proc, url):
        assert httpx.post(f"{url}/events", json=sent[0]).status_code == 401          # token from SEQREC_TOKEN
        with ThreadPoolExecutor(threads) as pool:
            ids = [i for chunk in pool.map(writer, range(threads)) for i in chunk]
        assert len(ids) == len(set(ids)) == len(sent)
        users = sorted({e["user"] for e in sent})[:5]
        before = {u: _items(httpx.post(f"{url}/recommend", json={"user": u, "k": 5})) for u in users}
        proc.kill()                                                              # SIGKILL: no clean shutdown
    with sqlite3.connect(events_db) as db:
        rows = db.execute("SELECT user, item, timestamp FROM events").fetchall()
    assert sorted(rows) == sorted((e["user"], e["item"], e["timestamp"]) for e in sent)   # each exactly once

    with serving(folder, events_db, tmp_path / "server.log") as (_, url):
        assert httpx.get(f"{url}/health").json()["events"] == len(sent)
        for user in users:
            mine = sorted((e["timestamp"], e["item"]) for e in sent if e["user"] == user)
            expected = recommend(bundle, [user], [_history(bundle, user) + [i for _, i in mine]], k=5)[0].items
            assert _items(httpx.post(f"{url}/recommend", json={"user": user, "k": 5})) == before[user] == expected


def test_the_event_store_defaults_to_the_run_folder(folder, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(folder, run / "bundle")
    assert default_events_path(run) == default_events_path(run / "bundle") == (run / "events.sqlite").resolve()
    with TestClient(create_app(run)) as c:
        assert c.post("/events", json={"user": 1, "item": 2, "timestamp": 3}).status_code == 200   # no token set
    assert (run / "events.sqlite").is_file()
