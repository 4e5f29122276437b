"""Bundles round-trip exactly, load without training code, and reject bad or partial folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrec import atomic
from seqrec import bundle as bundles
from seqrec.bundle import FORMAT_VERSION, Histories, load_bundle, save_bundle
from seqrec.errors import SeqrecError
from tests.bundle_fixtures import random_bundle, saved_random_bundle, titled_log
from tests.conftest import REPO, make_log


@pytest.fixture(scope="module")
def saved_bundle(tmp_path_factory):
    return saved_random_bundle(tmp_path_factory)


def _all_scores(b: bundles.Bundle) -> torch.Tensor:
    users = np.arange(b.num_users + 1)
    with torch.no_grad():
        return b.model.score_all(torch.as_tensor(users), torch.as_tensor(b.histories.last))


def test_round_trip_gives_identical_scores_and_data(tmp_path):
    made = random_bundle()
    loaded = load_bundle(save_bundle(made, tmp_path / "b"))
    torch.testing.assert_close(_all_scores(loaded), _all_scores(made), rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.histories.last, made.histories.last)
    np.testing.assert_array_equal(loaded.histories.seen.items, made.histories.seen.items)
    np.testing.assert_array_equal(loaded.user_map.external, made.user_map.external)
    assert loaded.meta == made.meta
    assert loaded.meta["config"]["model_params"]["L"] == 3 and loaded.meta["format_version"] == FORMAT_VERSION


def test_loads_in_a_fresh_process_without_training_code(saved_bundle):
    code = (
        "import json, sys, numpy as np, torch\n"
        "from seqrec.bundle import load_bundle\n"
        "b = load_bundle(sys.argv[1])\n"
        "s = b.model.score_all(torch.arange(b.num_users + 1), torch.as_tensor(b.histories.last))\n"
        "banned = [m for m in ('seqrec.training', 'seqrec.api', 'seqrec.losses', 'seqrec.evaluation') "
        "if m in sys.modules]\n"
        "print(json.dumps({'banned': banned, 'scores': s.tolist()}))\n"
    )
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code, str(saved_bundle)], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["banned"] == []
    expected = _all_scores(load_bundle(saved_bundle))
    torch.testing.assert_close(torch.tensor(result["scores"]), expected)


def test_histories_hold_the_last_L_items_of_the_whole_log_in_time_order():
    #          user: a  a  a  a  a  b  b  a   (times out of order; a's latest two rows tie at 9)
    log = make_log(["a", "a", "a", "a", "a", "b", "b", "a"], [1, 2, 3, 4, 5, 6, 1, 7], [3, 1, 9, 2, 9, 5, 4, 0])
    h = Histories.from_log(log, L=3)
    a, b = log.user_map.to_index(np.array(["a", "b"]))
    item = log.item_map.to_index
    np.testing.assert_array_equal(h.last[a], item(np.array([1, 3, 5])))       # times 3, 9, 9 (file order on tie)
    np.testing.assert_array_equal(h.last[b], [0, *item(np.array([1, 6]))])    # left-padded
    np.testing.assert_array_equal(h.last[0], [0, 0, 0])                       # the unknown user
    rows, items = h.seen_of(np.array([a, 0, b]))
    assert sorted(items[rows == 0]) == sorted(item(np.array([1, 2, 3, 4, 5, 7])))
    assert (rows != 1).all() and sorted(items[rows == 2]) == sorted(item(np.array([1, 6])))


def test_ids_keep_their_type_and_titles_survive(tmp_path):
    loaded = load_bundle(save_bundle(random_bundle(titled_log()), tmp_path / "b"))
    ids = json.loads((tmp_path / "b" / "id_maps.json").read_text())
    assert ids["users"] == ["u1", "u2", "u9"] and ids["items"] == list(range(1, 10))
    assert loaded.user_index(["u2", "nobody", 7]).tolist() == [2, 0, 0]
    assert loaded.item_index([9, " 9", "x", 10, True, "--9", 2**70]).tolist() == [9, 9, 0, 0, 0, 0, 0]
    assert loaded.titles[loaded.item_index([4])[0]] == "title 4"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("name", ["weights.safetensors", "histories.npz", "id_maps.json"])
def test_truncated_or_tampered_files_are_rejected(saved_bundle, tmp_path, name):
    truncated, flipped = _copy(saved_bundle, tmp_path / "t"), _copy(saved_bundle, tmp_path / "f")
    data = (saved_bundle / name).read_bytes()
    (truncated / name).write_bytes(data[: len(data) // 2])
    (flipped / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    for folder in (truncated, flipped):
        with pytest.raises(SeqrecError, match=rf"{name}: sha256 does not match"):
            load_bundle(folder)


def test_missing_or_broken_bundle_json_is_rejected(saved_bundle, tmp_path):
    with pytest.raises(SeqrecError, match=r"bundle\.json: file not found"):
        load_bundle(tmp_path)
    broken = _copy(saved_bundle, tmp_path / "b")
    (broken / "bundle.json").write_text((saved_bundle / "bundle.json").read_text()[:50])
    with pytest.raises(SeqrecError, match="not valid JSON"):
        load_bundle(broken)


def _edit_meta(folder: Path, sign: bool = True, **changes) -> None:
    """Change bundle.json; with `sign`, recompute its own digest as a consistent (deliberate) edit would."""
    meta = json.loads((folder / "bundle.json").read_text()) | changes
    if sign:
        meta["meta_sha256"] = bundles._meta_digest(meta)
    (folder / "bundle.json").write_text(json.dumps(meta))


def test_an_edited_bundle_json_is_rejected_and_its_file_list_cannot_be_emptied(saved_bundle, tmp_path):
    folder = _copy(saved_bundle, tmp_path / "b")
    meta = json.loads((folder / "bundle.json").read_text())
    _edit_meta(folder, sign=False, model=meta["model"] | {"params": meta["model"]["params"] | {"h_activation": "tanh"}})
    with pytest.raises(SeqrecError, match=r"does not match its meta_sha256; the file was modified"):
        load_bundle(folder)
    _edit_meta(folder, sign=False, num_items=10**13, model=meta["model"])
    with pytest.raises(SeqrecError, match=r"does not match its meta_sha256"):
        load_bundle(folder)
    _edit_meta(folder, files={}, num_items=meta["num_items"])
    with pytest.raises(SeqrecError, match=r"missing files.id_maps.json, files.weights.safetensors"):
        load_bundle(folder)


def test_sizes_are_checked_against_the_id_maps_before_any_model_is_built(saved_bundle, tmp_path, monkeypatch):
    folder = _copy(saved_bundle, tmp_path / "b")
    _edit_meta(folder, num_items=10**13)                                        # even with a consistent digest
    monkeypatch.setattr(bundles, "_load_weights", lambda *a: pytest.fail("built a model"))
    with pytest.raises(SeqrecError, match=r"do not match num_users=40, num_items=10000000000000"):
        load_bundle(folder)


def test_other_format_versions_are_rejected(saved_bundle, tmp_path):
    folder = _copy(saved_bundle, tmp_path / "b")
    _edit_meta(folder, format_version=FORMAT_VERSION + 1)
    with pytest.raises(SeqrecError, match=f"format_version {FORMAT_VERSION + 1}.*reads format_version "
                                          f"{FORMAT_VERSION}"):
        load_bundle(folder)


def test_weights_that_do_not_match_the_config_are_rejected(saved_bundle, tmp_path):
    folder = _copy(saved_bundle, tmp_path / "b")
    meta = json.loads((folder / "bundle.json").read_text())
    _edit_meta(folder, model={"name": "caser", "params": meta["model"]["params"] | {"embedding_dim": 9}})
    with pytest.raises(SeqrecError, match=r"do not match the model config.*item_emb.weight has shape \(31, 8\), "
                                          r"the config needs \(31, 9\)"):
        load_bundle(folder)


def test_a_crash_mid_save_leaves_the_previous_bundle_intact(tmp_path, monkeypatch):
    path = save_bundle(random_bundle(seed=0), tmp_path / "b")
    before = _all_scores(load_bundle(path))

    def crash(tensors, filename):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(bundles, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(random_bundle(seed=1), path)
    torch.testing.assert_close(_all_scores(load_bundle(path)), before, rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["b"]                      # no temporary folder left


def test_saving_never_replaces_a_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(SeqrecError, match="exists and is not a seqrec bundle; refusing to replace it"):
        save_bundle(random_bundle(), tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


@pytest.mark.parametrize("exchange", [True, False])
def test_saving_over_a_bundle_replaces_it_whole(tmp_path, monkeypatch, exchange):
    if not exchange:                                                          # the portable fallback
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    path = save_bundle(random_bundle(seed=0), tmp_path / "b")
    new = random_bundle(seed=1)
    save_bundle(new, path)
    torch.testing.assert_close(_all_scores(load_bundle(path)), _all_scores(new), rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


@pytest.mark.slow
def test_train_on_ml100k_writes_a_bundle_that_round_trips(ml100k_dir, tmp_path):
    """`seqrec train --out DIR` (1 epoch) writes DIR/metrics.json and DIR/bundle; the bundle reproduces
    the run's scores, keeps titles, and each user's history ends with their held-out (latest) item."""
    from typer.testing import CliRunner

    from seqrec.api import load_dataset
    from seqrec.cli import app
    from seqrec.config import DataConfig
    from seqrec.recommend import recommend

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--preset", "d2l", "--epochs", "1", "--data-dir", str(ml100k_dir),
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    loaded = load_bundle(out)                                              # the run folder resolves to bundle/
    assert (out / "metrics.json").is_file() and loaded.meta["metrics"] == json.loads(
        (out / "metrics.json").read_text())["metrics"]
    log = load_dataset(DataConfig(data_dir=str(ml100k_dir)))
    user = int(log.users[0])                                               # external id 196
    rows = np.flatnonzero(log.users == user)
    latest = rows[np.lexsort((rows, log.times[rows]))][-5:]
    np.testing.assert_array_equal(loaded.histories.last[user], log.items[latest])
    again = load_bundle(save_bundle(loaded, tmp_path / "copy"))
    torch.testing.assert_close(_all_scores(again), _all_scores(loaded), rtol=0, atol=0)
    top = recommend(loaded, users=[196], k=3)[0]
    assert len(top.titles) == 3 and all(top.titles)
