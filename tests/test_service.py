"""The HTTP service against a real SQLite file: in-process (TestClient) and as real `seqrec serve`
processes on loopback (concurrent writers, kill -9 under load and restart, two replicas on one store)."""

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
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from seqrec.bundle import FORMAT_VERSION, load_bundle, save_bundle
from seqrec.cli import main
from seqrec.errors import SeqrecError
from seqrec.recommend import recommend
from seqrec.service import create_app
from seqrec.service.app import default_events_path
from seqrec.service.store import EventStore, bundle_sha256
from tests.bundle_fixtures import random_bundle, saved_random_bundle
from tests.conftest import REPO

with warnings.catch_warnings():                 # starlette's note that its TestClient will move off httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json"}
LIMIT = 2 * 1024 * 1024                         # the default body size limit


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return saved_random_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(folder):
    return load_bundle(folder)


@pytest.fixture(scope="module")
def other_folder(tmp_path_factory) -> Path:
    """A different bundle (another seed): its bundle.json differs."""
    return save_bundle(random_bundle(seed=1), tmp_path_factory.mktemp("bundles") / "other")


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
                                               "L": 3, "events": 0, "format_version": FORMAT_VERSION,
                                               "seqrec_version": None}
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
    ({"content": b'{"user": 1, "k": ', "headers": JSON}, 400, "malformed JSON"),
    ({"content": b'{"user": 1, "k": NaN}', "headers": JSON}, 422, "NaN and Infinity are not valid JSON"),
    ({"content": b'{"user": 1, "items": [2, -Infinity]}', "headers": JSON}, 422, "NaN and Infinity are not valid"),
    ({"content": b" " * (LIMIT + 1), "headers": JSON}, 413, f"the limit is {LIMIT} bytes"),
    ({"content": iter([b" " * 2**20] * 3), "headers": JSON}, 413, f"the limit is {LIMIT} bytes"),   # no length
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
    assert len(response.content) < 1000                                     # the request is never echoed
    assert client.post("/recommend", json={"user": 1}).status_code == 200    # still serving


@pytest.mark.parametrize(("body", "headers", "status", "message"), [
    ({"user": 1, "item": 2, "timestamp": 3}, {}, 401, "needs a token"),
    ({"user": 1, "item": 2, "timestamp": 3}, {"Authorization": "Bearer wrong"}, 403, "wrong token"),
    ({"user": 1, "item": 2}, AUTH, 422, "timestamp"),
    ({"user": 1, "item": 2, "timestamp": "soon"}, AUTH, 422, "valid integer"),
    ([], AUTH, 422, "at least 1 item"),
    ([{"user": 1, "item": 2, "timestamp": 3}] * 10_001, AUTH, 422, "at most 10000 items"),
    (b'{"user": 1, "item": 2, "timestamp": Infinity}', AUTH, 422, "NaN and Infinity are not valid JSON"),
    ({"user": 1, "item": "x" * LIMIT, "timestamp": 3}, AUTH, 413, "request body too large"),
])
def test_bad_event_requests_are_refused_and_nothing_is_stored(client, body, headers, status, message):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/events", content=content, headers=headers | JSON)
    assert response.status_code == status and message in json.dumps(response.json()["detail"])
    assert client.get("/health").json()["events"] == 0
    assert client.post("/events", json={"user": 1, "item": 2, "timestamp": 3}, headers=AUTH).status_code == 200


def test_validation_errors_give_location_message_and_type_never_the_input(client):
    response = client.post("/events", json={"user": 1, "item": 2, "timestamp": "9" * 100_000}, headers=AUTH)
    assert response.status_code == 422 and len(response.content) < 1000
    assert [set(error) for error in response.json()["detail"]] == [{"loc", "msg", "type"}]


def test_protect_recommend_needs_the_token_on_recommend_too(folder, bundle, tmp_path):
    with TestClient(create_app(folder, tmp_path / "e.sqlite", token=TOKEN, protect_recommend=True)) as c:
        assert c.post("/recommend", json={"user": 5}).status_code == 401
        assert c.post("/recommend", json={"user": 5}, headers={"Authorization": "Bearer no"}).status_code == 403
        assert _items(c.post("/recommend", json={"user": 5, "k": 3}, headers=AUTH)) == \
            recommend(bundle, [5], k=3)[0].items


def _delete(path: Path) -> None:
    path.unlink()


def _replace(path: Path) -> None:                   # by a copy: same content, another file
    shutil.copy(path, path.with_suffix(".copy"))
    path.with_suffix(".copy").replace(path)


def _read_only(path: Path) -> None:                 # tests run as root: only the mode bits say so
    path.chmod(0o444)


def _query(path: Path, sql: str) -> list[tuple]:
    """Rows of `sql` read from the SQLite file at `path` by a connection of its own; [] when there is no file."""
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def _stored(path: Path) -> list[tuple]:
    return _query(path, "SELECT user, item, timestamp FROM events ORDER BY id")


@pytest.mark.parametrize(("break_store", "reason"), [
    (_delete, "was deleted or moved away"), (_replace, "was replaced by another file"), (_read_only, "is read-only")])
def test_events_are_refused_and_health_fails_once_the_store_file_is_gone(folder, tmp_path, break_store, reason):
    path = tmp_path / "events.sqlite"
    with TestClient(create_app(folder, path, token=TOKEN)) as c:
        assert c.post("/events", json={"user": 1, "item": 2, "timestamp": 3}, headers=AUTH).status_code == 200
        break_store(path)
        refused = c.post("/events", json={"user": 1, "item": 4, "timestamp": 5}, headers=AUTH)
        assert refused.status_code == 503 and refused.json()["detail"] == f"{path} {reason}; events cannot be " \
            + ("stored (make it writable)" if break_store is _read_only else "stored (restart the service)")
        health = c.get("/health")
        assert health.status_code == 503
        assert health.json() == {"status": "unhealthy", "detail": refused.json()["detail"]}
    assert (1, 4, 5) not in _stored(path)


def test_an_event_committed_into_a_just_deleted_file_is_not_acknowledged(folder, bundle, tmp_path):
    path = tmp_path / "events.sqlite"
    with TestClient(create_app(folder, path, token=TOKEN)) as c:
        before = _items(c.post("/recommend", json={"user": 7, "k": 5}))
        # SQLite commits into a deleted file without complaint: delete it just before the commit
        c.app.state.store._conn.set_trace_callback(lambda sql: sql == "COMMIT" and path.unlink())
        refused = c.post("/events", json={"user": 7, "item": before[0], "timestamp": 10**9}, headers=AUTH)
        assert refused.status_code == 503 and "was deleted" in refused.json()["detail"]
        assert _items(c.post("/recommend", json={"user": 7, "k": 5})) == before


def test_an_unstamped_store_is_stamped_and_another_bundles_store_is_refused(folder, other_folder, bundle, tmp_path):
    run, path = tmp_path / "run", tmp_path / "run" / "events.sqlite"
    shutil.copytree(folder, run / "bundle")
    with closing(sqlite3.connect(path)) as db:       # a store from before stamps: events only
        db.executescript("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, user NOT NULL, item NOT NULL, "
                         "timestamp INTEGER NOT NULL); INSERT INTO events (user, item, timestamp) VALUES (7, 3, 100);")
    with TestClient(create_app(run)) as c:
        assert _items(c.post("/recommend", json={"user": 7, "k": 4})) == \
            recommend(bundle, [7], [[*_history(bundle, 7), 3]], k=4)[0].items
    assert _query(path, "SELECT value FROM meta") == [(bundle_sha256(folder),)]
    shutil.rmtree(run / "bundle")
    shutil.copytree(other_folder, run / "bundle")   # a new model trained into the old run folder
    with pytest.raises(SeqrecError, match=r"holds the events of another bundle .* --events NEW\.sqlite"), \
            TestClient(create_app(run)):
        pass


def _serve_error(monkeypatch, capsys, *args: str) -> list[str]:
    """`seqrec serve ARGS` in this process (it must fail before serving): its stderr lines, after exit code 2."""
    monkeypatch.setattr(sys, "argv", ["seqrec", "serve", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--port", "70000"], None, "--port must be between 1 and 65535, got 70000"),
    (["--port", "0"], None, "--port must be between 1 and 65535, got 0"),
    (["--threads", "0"], None, "--threads must be at least 1, got 0"),
    (["--token", ""], None, "the token is empty; give a real token, or none to leave POST /events open"),
    ([], "", "the token is empty; give a real token, or none to leave POST /events open"),
    (["--protect-recommend"], None, "protecting POST /recommend needs a token (--token or SEQREC_TOKEN)"),
    (["--max-body-bytes", "0"], None, "the body size limit must be at least 1 byte, got 0"),
])
def test_bad_serve_options_are_one_line_errors(folder, tmp_path, monkeypatch, capsys, args, env, message):
    monkeypatch.delenv("SEQREC_TOKEN", raising=False)
    if env is not None:
        monkeypatch.setenv("SEQREC_TOKEN", env)
    lines = _serve_error(monkeypatch, capsys, "--bundle", str(folder), "--events", str(tmp_path / "e.sqlite"), *args)
    assert lines == [f"seqrec: error: {message}"]


def test_a_read_only_unopenable_or_foreign_store_is_a_one_line_error_at_start(folder, other_folder, tmp_path,
                                                                             monkeypatch, capsys):
    path = tmp_path / "events.sqlite"
    EventStore(path, folder).close()
    path.chmod(0o444)
    assert _serve_error(monkeypatch, capsys, "--bundle", str(folder), "--events", str(path)) == [
        f"seqrec: error: {path} is read-only; events cannot be stored (make it writable)"]
    (lines,) = _serve_error(monkeypatch, capsys, "--bundle", str(folder), "--events", str(tmp_path))
    assert lines.startswith(f"seqrec: error: {tmp_path}: cannot open the event store (")
    path.chmod(0o644)
    assert _serve_error(monkeypatch, capsys, "--bundle", str(other_folder), "--events", str(path)) == [
        f"seqrec: error: {path} holds the events of another bundle (bundle.json sha256 {bundle_sha256(folder)[:12]}), "
        f"not of {other_folder} (sha256 {bundle_sha256(other_folder)[:12]}); give this bundle its own store: "
        "--events NEW.sqlite"]


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
def serving(folder: Path, events: Path, log: Path, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """A real `seqrec serve` process (with ARGS) on a free loopback port, killed on exit."""
    port = _free_port()
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "SEQREC_TOKEN": TOKEN}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "seqrec", "serve", "--bundle", str(folder), "--port", str(port),
                                 "--events", str(events), *args], env=env, stdout=out, stderr=out)
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


def _expected(bundle, user, rows: list[tuple], k: int = 5) -> list:
    """The library's answer for `user` on the bundle's history followed by their stored (user, item, timestamp) rows."""
    mine = [item for _, item in sorted((t, i) for u, i, t in rows if u == user)]
    return recommend(bundle, [user], [_history(bundle, user) + mine], k=k)[0].items


def test_kill_9_under_concurrent_writers_keeps_every_acknowledged_event_exactly_once(folder, bundle, tmp_path):
    events_db, threads, posts, per_post = tmp_path / "events.sqlite", 8, 40, 3
    sent = [{"user": 1 + (t * 7 + p) % 40, "item": 1 + (t + p * per_post + e) % 30,
             "timestamp": 10**6 + (t * posts + p) * per_post + e}
            for t in range(threads) for p in range(posts) for e in range(per_post)]

    def writer(t: int) -> list[int]:
        """Post this thread's events until the server dies; the ids it acknowledged."""
        ids = []
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            for p in range(posts):
                start = (t * posts + p) * per_post
                try:
                    response = http.post("/events", json=sent[start:start + per_post])
                except httpx.TransportError:
                    break
                assert response.status_code == 200, response.text
                ids += response.json()["ids"]
        return ids

    with serving(folder, events_db, tmp_path / "server.log") as (proc, url):
        assert httpx.post(f"{url}/events", json=sent[0]).status_code == 401          # token from SEQREC_TOKEN
        with ThreadPoolExecutor(threads) as pool:
            writers = [pool.submit(writer, t) for t in range(threads)]
            while len(_stored(events_db)) < len(sent) // 3 and not all(w.done() for w in writers):
                time.sleep(0.01)
            proc.kill()                                                          # SIGKILL under load
            ids = [i for w in writers for i in w.result()]
    stored = {i: (u, it, t) for i, u, it, t in _query(events_db, "SELECT id, user, item, timestamp FROM events")}
    assert 0 < len(ids) == len(set(ids)) < len(sent)                           # killed mid-stream
    assert set(ids) <= set(stored)                                             # every acknowledged event is kept
    rows = list(stored.values())
    assert len(set(rows)) == len(rows) and set(rows) <= {(e["user"], e["item"], e["timestamp"]) for e in sent}

    with serving(folder, events_db, tmp_path / "server.log") as (_, url):
        assert httpx.get(f"{url}/health").json()["events"] == len(rows)
        for user in sorted({u for u, _, _ in rows})[:5]:
            assert _items(httpx.post(f"{url}/recommend", json={"user": user, "k": 5})) == _expected(bundle, user, rows)


def test_two_replicas_on_one_store_answer_alike_with_each_others_events(folder, bundle, tmp_path):
    events_db, log = tmp_path / "events.sqlite", tmp_path / "server.log"
    with serving(folder, events_db, log) as (_, a), serving(folder, events_db, log, "--threads", "2") as (_, b):
        user, rows = 7, []
        before = _items(httpx.post(f"{b}/recommend", json={"user": user, "k": 5}))
        items = [before[0], 12, 23, 4, 15, 26]                                # B's top item: now seen, so B must change
        for step, (url, item) in enumerate(zip([a, b, a, a, b, b], items, strict=True)):   # each writes in turn
            event = {"user": user, "item": item, "timestamp": 10**9 - step}  # out of order
            assert httpx.post(f"{url}/events", json=event, headers=AUTH).status_code == 200
            rows.append((user, item, event["timestamp"]))
            answers = [_items(httpx.post(f"{u}/recommend", json={"user": user, "k": 5})) for u in (b, a)]
            assert answers[0] == answers[1] == _expected(bundle, user, rows)
            assert answers[0] != before
        assert httpx.get(f"{a}/health").json()["events"] == httpx.get(f"{b}/health").json()["events"] == 6


def test_the_event_store_defaults_to_the_run_folder(folder, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(folder, run / "bundle")
    assert default_events_path(run) == default_events_path(run / "bundle") == (run / "events.sqlite").resolve()
    with TestClient(create_app(run)) as c:
        assert c.post("/events", json={"user": 1, "item": 2, "timestamp": 3}).status_code == 200   # no token set
    assert (run / "events.sqlite").is_file()
