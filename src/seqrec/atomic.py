"""Folders written atomically: filled in a temporary sibling, fsynced, then swapped in whole.

A crash at any point leaves either the previous folder or the new one, never a mix; the
temporary sibling of a crashed write is removed by the next write to the same path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _leftovers(path: Path) -> list[Path]:
    return [p for p in path.parent.glob(f".{path.name}.tmp-*") if p.is_dir()]


def write_folder(path: Path, fill: Callable[[Path], None]) -> Path:
    """Make `path` a folder holding exactly what `fill(tmp)` writes into an empty temporary folder.

    The previous folder at `path` (if any) stays whole until the swap and is then deleted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _leftovers(path):                 # a crashed earlier write of this path
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        fill(tmp)
        for f in sorted(tmp.rglob("*"), reverse=True):        # files before the folders that hold them
            f.chmod(0o755 if f.is_dir() else 0o644)            # mkdtemp and some writers make owner-only files
            _fsync(f)
        tmp.chmod(0o755)
        _fsync(tmp)
        if path.exists() and _exchange(tmp, path):
            shutil.rmtree(tmp)                  # tmp now holds the previous folder
        elif path.exists():                     # no atomic exchange here: move aside, then rename in
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            path.rename(old / path.name)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
        _fsync(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path
