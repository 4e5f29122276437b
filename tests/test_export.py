"""Exported scoring functions give the model's scores, and load with PyTorch alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seqrec.bundle import load_bundle
from seqrec.cli import app
from seqrec.errors import SeqrecError
from seqrec.export import export
from seqrec.models.registry import MODELS
from tests import model_fixtures
from tests.bundle_fixtures import saved_random_bundle


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return saved_random_bundle(tmp_path_factory)


def _inputs(bundle, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    users = torch.as_tensor(rng.integers(0, bundle.num_users + 1, batch))
    return users, torch.as_tensor(rng.integers(0, bundle.num_items + 1, (batch, bundle.L)))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_torchscript_export_gives_the_models_scores(folder, tmp_path, batch):
    bundle = load_bundle(folder)
    path = export(bundle, tmp_path / "scorer.pt")
    users, seqs = _inputs(bundle, batch)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(path))(users, seqs), bundle.model.score_all(users, seqs))


def test_cli_export_writes_a_file_that_pytorch_alone_can_run(folder, tmp_path):
    out = tmp_path / "scorer.pt"
    result = CliRunner().invoke(app, ["export", "--bundle", str(folder), "--format", "torchscript", "--out", str(out)])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(folder)
    users, seqs = _inputs(bundle, 5, seed=1)
    code = ("import json, sys, torch\n"
            "m = torch.jit.load(sys.argv[1])\n"
            "users, seqs = (torch.tensor(x) for x in json.loads(sys.argv[2]))\n"
            "print(json.dumps({'scores': m(users, seqs).tolist(), 'seqrec': any(k.startswith('seqrec') "
            "for k in sys.modules)}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code, str(out), json.dumps([users.tolist(), seqs.tolist()])],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=True)
    got = json.loads(done.stdout)
    assert got["seqrec"] is False
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(got["scores"]), bundle.model.score_all(users, seqs))


def test_onnx_export_gives_the_models_scores_for_any_batch_size(folder, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    bundle = load_bundle(folder)
    out = tmp_path / "scorer.onnx"
    result = CliRunner().invoke(app, ["export", "--bundle", str(folder), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 9):
        users, seqs = _inputs(bundle, batch, seed=batch)
        (scores,) = session.run(["scores"], {"users": users.numpy(), "seqs": seqs.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(scores), bundle.model.score_all(users, seqs))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_export_gives_every_models_scores(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    bundle = model_fixtures.small_bundle(name)
    session = ort.InferenceSession(str(export(bundle, tmp_path / "scorer.onnx", "onnx")),
                                   providers=["CPUExecutionProvider"])
    users, seqs = model_fixtures.batch(name)
    (scores,) = session.run(["scores"], {"users": users.numpy(), "seqs": seqs.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(scores), bundle.model.score_all(users, seqs))


def test_unknown_export_format_is_a_clear_error(folder, tmp_path):
    with pytest.raises(SeqrecError, match="unknown export format 'tflite'; known: torchscript, onnx"):
        export(load_bundle(folder), tmp_path / "x", "tflite")
