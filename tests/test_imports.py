"""Layering: training loads no model module, polars or the service; settings import no registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def loaded_modules(module: str) -> list[str]:
    code = f"import json, sys, {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", ["seqrec.training", "seqrec.config"])
def test_training_and_settings_load_no_model_polars_or_service(module):
    loaded = loaded_modules(module)
    assert "polars" not in loaded
    assert not [m for m in loaded if m.startswith(("seqrec.service", "seqrec.models.", "seqrec.settings"))
                and m != "seqrec.models.base"]
