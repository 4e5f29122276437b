"""The library, the CLI and the HTTP service recommend through one path: the same bundle and query give
the same top-10 items and the same report of unknown items."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from seqrec.bundle import load_bundle
from seqrec.cli import app
from seqrec.recommend import recommend
from seqrec.service import create_app
from tests.bundle_fixtures import saved_random_bundle

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# (user, recent items): a stored history, items with an unknown one, a new user, items only, all unknown items
QUERIES = [("4", None), ("5", ["3", "4", "no-such-item"]), ("stranger", ["7", "8"]), (None, ["9", "x1", "10"]),
           ("6", ["x2"])]


@pytest.mark.parametrize(("user", "items"), QUERIES)
def test_library_cli_and_service_give_identical_top_10(tmp_path_factory, tmp_path, user, items):
    folder = saved_random_bundle(tmp_path_factory)
    (lib,) = recommend(load_bundle(folder), None if user is None else [user], None if items is None else [items], k=10)

    args = ["recommend", "--bundle", str(folder), "-k", "10", "--json"]
    args += [] if user is None else ["--user", user]
    args += [] if items is None else ["--items", ",".join(items)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    (cli,) = [json.loads(line) for line in done.output.splitlines()]

    with TestClient(create_app(folder, tmp_path / "events.sqlite")) as client:
        response = client.post("/recommend", json={"user": user, "items": items, "k": 10})
    assert response.status_code == 200, response.text
    http = response.json()

    assert len(lib.items) == 10
    assert cli["items"] == [r["item"] for r in http["items"]] == lib.items
    assert cli["unknown_items"] == http["unknown_items"] == lib.unknown_items
    assert lib.unknown_items == [i for i in items or [] if i.startswith(("x", "no-"))]
