"""Export a bundle's scoring function, (users (B,), seqs (B, L)) int64 -> scores (B, num_items + 1) float32,
for serving without seqrec. Column 0 is padding: mask it (and seen items) before taking the top k.

- torchscript: needs only PyTorch: `torch.jit.load(path)(users, seqs)`.
- onnx: any ONNX runtime, inputs "users" and "seqs", output "scores", dynamic batch size
  (writing it needs the `export` extra: onnx and onnxscript).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from seqrec.bundle import Bundle
from seqrec.errors import SeqrecError


class Scorer(nn.Module):
    """The model's score_all as forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: Tensor, seqs: Tensor) -> Tensor:      # (B,), (B, L) -> (B, num_items + 1)
        return self.model.score_all(users, seqs)


def _torchscript(scorer: Scorer, example: tuple[Tensor, Tensor], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)         # TorchScript is deprecated, still loadable
        warnings.simplefilter("ignore", torch.jit.TracerWarning)    # shapes fixed by the bundle (L) become constants
        torch.jit.trace(scorer, example).save(str(path))


def _onnx(scorer: Scorer, example: tuple[Tensor, Tensor], path: Path) -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise SeqrecError(f"ONNX export needs {' and '.join(missing)}: pip install 'seqrec[export]'")
    batch = torch.export.Dim("batch")
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)                                     # not "torchvision is not installed" lines
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)            # notes about naming the shared batch axis
            warnings.simplefilter("ignore", FutureWarning)          # deprecations inside torch's own exporter
            torch.onnx.export(scorer, example, str(path), input_names=["users", "seqs"], output_names=["scores"],
                              dynamic_shapes={"users": {0: batch}, "seqs": {0: batch}}, dynamo=True, verbose=False)
    finally:
        log.setLevel(level)


WRITERS = {"torchscript": _torchscript, "onnx": _onnx}
FORMATS = tuple(WRITERS)


def export(bundle: Bundle, path: Path, fmt: str = "torchscript") -> Path:
    """Write the scoring part of `bundle` to `path` in format `fmt` (one of FORMATS)."""
    if fmt not in WRITERS:
        raise SeqrecError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if path.is_dir():
        raise SeqrecError(f"--out {path}: is a folder; give the file to write, e.g. {path / ('scorer.' + fmt)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.ones(2, dtype=torch.long), torch.ones(2, bundle.L, dtype=torch.long))
    with torch.no_grad():
        WRITERS[fmt](Scorer(bundle.model).eval(), example, path)
    return path
