"""Model bundles: a folder of JSON, safetensors and npz that round-trips without pickle.

Layout (FORMAT_VERSION 2)::

    bundle.json          format_version, seqrec version, model name + params, num_users, num_items,
                         the RunConfig, dataset checksum, metrics, the sha256 of every other file, and
                         meta_sha256: the sha256 of bundle.json's own other content
    id_maps.json         {"users": [...], "items": [...]}: external ids (ints stay ints), index i+1 <-> [i]
    weights.safetensors  the model's state_dict
    histories.npz        last (num_users + 1, L): each user's last L items of the whole log, left-padded
                         with 0 (row 0: the unknown user); seen_indptr (num_users + 2,), seen_items:
                         each user's distinct items (CSR, row u = user index u)
    titles.json          optional: item titles by item index (index 0 empty)

Loading imports only models, data containers and errors (never training code), checks the
format version, every file's sha256, and that the weights match the model config. Saving writes
a temporary sibling folder, fsyncs it, then swaps it in, so a crash never leaves a half bundle.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqrec import __version__
from seqrec.atomic import sha256, write_folder
from seqrec.config import RunConfig
from seqrec.data.interactions import IdMap, Interactions
from seqrec.data.keys import distinct
from seqrec.data.sequences import Sequences
from seqrec.errors import SeqrecError
from seqrec.models.registry import build_model, model_config, model_spec

FORMAT_VERSION = 2
REQUIRED_FILES = ("id_maps.json", "weights.safetensors", "histories.npz")
META, ID_MAPS, WEIGHTS, HISTORIES, TITLES = ("bundle.json", "id_maps.json", "weights.safetensors",
                                             "histories.npz", "titles.json")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")     # canonical integer text, as the readers' rule
BUNDLE_SUBDIR = "bundle"            # `seqrec train --out DIR` writes DIR/bundle next to DIR/metrics.json


@dataclass(frozen=True)
class Histories:
    """What serving needs per user index u (0 = unknown user, all empty).

    last: (num_users + 1, L) the last L items of u's whole log, oldest first, left-padded with 0.
    seen: u's distinct items as CSR (seen.users = 0..num_users).
    """

    last: np.ndarray
    seen: Sequences

    @classmethod
    def from_log(cls, log: Interactions, L: int) -> Histories:
        """Every event in time order (ties keep log order), all of it, including held-out events."""
        order = np.lexsort((np.arange(len(log)), log.times, log.users))
        by_user = Sequences.from_sorted(log.users[order], log.items[order])
        last = np.zeros((log.num_users + 1, L), np.int64)
        last[by_user.users] = by_user.last(L)
        stride = log.num_items + 1
        pairs = distinct(log.users * stride + log.items)            # sorted distinct (user, item)
        counts = np.bincount(pairs // stride, minlength=log.num_users + 1)
        indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        return cls(last, Sequences(np.arange(log.num_users + 1), indptr, pairs % stride))

    def seen_of(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) pairs of the seen items of `users` (B,): row in 0..B-1, vectorised."""
        starts, lengths = self.seen.indptr[users], self.seen.lengths[users]
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.seen.items[np.repeat(starts, lengths) + offsets]


@dataclass(frozen=True)
class Bundle:
    """A loaded (or about to be saved) model with what it needs to recommend."""

    model: nn.Module
    meta: dict[str, Any]                # bundle.json without the file digests
    user_map: IdMap
    item_map: IdMap
    histories: Histories
    titles: np.ndarray | None = None    # (num_items + 1,) str, index 0 empty

    @property
    def model_name(self) -> str:
        return self.meta["model"]["name"]

    @property
    def num_users(self) -> int:
        return self.meta["num_users"]

    @property
    def num_items(self) -> int:
        return self.meta["num_items"]

    @property
    def L(self) -> int:
        return self.histories.last.shape[1]

    def user_index(self, ids: list[Any]) -> np.ndarray:
        """(B,) user indices of external ids; 0 (unknown user) for ids the bundle does not know."""
        return _lookup(self.user_map, ids)

    def item_index(self, ids: list[Any]) -> np.ndarray:
        """(B,) item indices of external ids; 0 for ids the bundle does not know."""
        return _lookup(self.item_map, ids)


def _lookup(id_map: IdMap, ids: list[Any]) -> np.ndarray:
    """Indices of external ids, 0 where unknown; '12' matches 12 in an integer map ('012' does not: an id is an
    integer only in its canonical form), 12 matches '12' in a string map."""
    external = id_map.external
    if external.dtype.kind in "iu":
        def as_int(value: Any) -> int | None:
            if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
            return value if ok else None
        parsed = [as_int(v) for v in ids]
        matchable = np.array([v is not None for v in parsed], bool)
        values = np.array([0 if v is None else v for v in parsed], np.int64)
    else:
        matchable, values = np.ones(len(ids), bool), np.array([str(v) for v in ids], dtype=str)
    if not len(external) or not len(values):
        return np.zeros(len(values), np.int64)
    pos = np.searchsorted(external, values).clip(max=len(external) - 1)   # no cast: long strings never truncate
    return np.where(matchable & (external[pos] == values), pos + 1, 0).astype(np.int64)


def bundle_dir(path: Path) -> Path:
    """A bundle folder, or a run folder holding one in bundle/ (what `seqrec train --out` writes)."""
    path = Path(path)
    if not (path / META).is_file() and (path / BUNDLE_SUBDIR / META).is_file():
        return path / BUNDLE_SUBDIR
    return path


def _meta_digest(meta: dict[str, Any]) -> str:
    """sha256 of bundle.json's content other than this digest itself (keys sorted)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def write_bundle_files(bundle: Bundle, folder: Path) -> None:
    """Write the bundle's files into `folder` (created; non-atomic: see save_bundle and seqrec.runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in bundle.model.state_dict().items()}, folder / WEIGHTS)
    ids = {"users": bundle.user_map.external.tolist(), "items": bundle.item_map.external.tolist()}
    (folder / ID_MAPS).write_text(json.dumps(ids))
    with (folder / HISTORIES).open("wb") as handle:
        np.savez(handle, last=bundle.histories.last, seen_indptr=bundle.histories.seen.indptr,
                 seen_items=bundle.histories.seen.items)
    if bundle.titles is not None:
        (folder / TITLES).write_text(json.dumps([str(t) for t in bundle.titles]))
    files = {f.name: sha256(f) for f in sorted(folder.iterdir())}
    meta = bundle.meta | {"format_version": FORMAT_VERSION, "files": files}
    try:
        text = json.dumps(meta | {"meta_sha256": _meta_digest(meta)}, indent=2, allow_nan=False)
    except ValueError:
        raise SeqrecError("the bundle's metrics or settings hold NaN or infinity; refusing to write it") from None
    (folder / META).write_text(text + "\n")


def save_bundle(bundle: Bundle, path: Path) -> Path:
    """Write `bundle` to folder `path` atomically: the previous bundle there stays whole until the swap."""
    path = Path(path)
    if path.exists() and not (path / META).is_file() and (not path.is_dir() or any(path.iterdir())):
        raise SeqrecError(f"{path}: exists and is not a seqrec bundle; refusing to replace it (choose another path)")
    return write_folder(path, lambda tmp: write_bundle_files(bundle, tmp))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqrecError(f"{path}: file not found; is this a seqrec bundle folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SeqrecError(f"{path}: not valid JSON ({err}); the bundle is truncated or corrupt") from None


def _check_meta(folder: Path, meta: Any) -> None:
    if not isinstance(meta, dict):
        raise SeqrecError(f"{folder / META}: expected a JSON object")
    found = meta.get("format_version")
    if found != FORMAT_VERSION:
        raise SeqrecError(f"{folder / META}: bundle format_version {found!r}, this seqrec ({__version__}) reads "
                          f"format_version {FORMAT_VERSION}; re-create the bundle with this version")
    if meta.get("meta_sha256") != _meta_digest(meta):
        raise SeqrecError(f"{folder / META}: its content does not match its meta_sha256; the file was modified "
                          "after saving")
    missing = [k for k in ("model", "num_users", "num_items", "files") if k not in meta]
    if not missing and not (isinstance(meta["model"], dict) and {"name", "params"} <= meta["model"].keys()):
        missing = ["model.name or model.params"]
    missing += [f"files.{name}" for name in REQUIRED_FILES if name not in meta.get("files", {})]
    if missing:
        raise SeqrecError(f"{folder / META}: missing {', '.join(missing)}")
    for name, digest in meta["files"].items():
        if not (folder / name).is_file():
            raise SeqrecError(f"{folder / name}: file listed in {META} is missing")
        if sha256(folder / name) != digest:
            raise SeqrecError(f"{folder / name}: sha256 does not match {META}; the file is truncated or was "
                              "modified after saving")


def _load_weights(folder: Path, meta: dict[str, Any]) -> nn.Module:
    model = build_model(meta["model"]["name"], meta["model"]["params"], meta["num_users"], meta["num_items"])
    try:
        weights = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError) as err:
        raise SeqrecError(f"{folder / WEIGHTS}: cannot read weights ({err})") from None
    found = {k: tuple(v.shape) for k, v in weights.items()}
    sized_by_data = getattr(model, "sized_by_data", ())    # e.g. a sparse matrix's nonzeros: any length is right
    expected = {k: found.get(k, tuple(v.shape)) if k in sized_by_data else tuple(v.shape)
                for k, v in model.state_dict().items()}
    if found != expected:
        problems = [f"missing {k}" for k in expected.keys() - found.keys()]
        problems += [f"unexpected {k}" for k in found.keys() - expected.keys()]
        problems += [f"{k} has shape {found[k]}, the config needs {expected[k]}"
                     for k in expected.keys() & found.keys() if found[k] != expected[k]]
        raise SeqrecError(f"{folder / WEIGHTS}: weights do not match the model config in {META}: "
                          + "; ".join(sorted(problems)))
    model.load_state_dict(weights)
    return model.eval()


def load_bundle(path: Path) -> Bundle:
    """Load and verify a bundle folder (or a run folder holding bundle/); raises SeqrecError if it is bad.

    Every check that needs no model (digests, sizes against the id maps) runs before the model is built.
    """
    folder = bundle_dir(path)
    if not folder.is_dir():
        raise SeqrecError(f"{folder}: bundle folder not found")
    meta = _read_json(folder / META)
    _check_meta(folder, meta)
    ids = _read_json(folder / ID_MAPS)
    try:
        with np.load(folder / HISTORIES, allow_pickle=False) as npz:
            last, indptr, items = npz["last"], npz["seen_indptr"], npz["seen_items"]
    except (OSError, ValueError, KeyError) as err:
        raise SeqrecError(f"{folder / HISTORIES}: cannot read histories ({err})") from None
    num_users, num_items = meta["num_users"], meta["num_items"]
    L = history_length(meta["model"]["name"], meta["model"]["params"])
    if (len(ids["users"]) != num_users or len(ids["items"]) != num_items or last.shape != (num_users + 1, L)
            or len(indptr) != num_users + 2):
        raise SeqrecError(f"{folder}: id maps or histories do not match num_users={num_users}, "
                          f"num_items={num_items} in {META}")
    model = _load_weights(folder, meta)
    titles = np.array(_read_json(folder / TITLES), dtype=object) if (folder / TITLES).is_file() else None
    histories = Histories(last, Sequences(np.arange(num_users + 1), indptr, items))
    meta = {k: v for k, v in meta.items() if k not in ("files", "meta_sha256")}
    return Bundle(model, meta, IdMap(np.array(ids["users"])), IdMap(np.array(ids["items"])), histories, titles)


def history_length(model: str, params: dict[str, Any]) -> int:
    """How many recent items the model reads (its spec's history; 0 for BPR-MF and popularity)."""
    return model_spec(model).history(model_config(model, params))


def make_bundle(model: nn.Module, log: Interactions, cfg: RunConfig, metrics: dict[str, Any] | None = None) -> Bundle:
    """A bundle of a trained `model` on `log`, trained with settings `cfg` (kept whole, for provenance)."""
    config = cfg.to_dict()
    meta = {"format_version": FORMAT_VERSION, "seqrec_version": __version__,
            "model": {"name": cfg.model, "params": config["model_params"]},
            "num_users": log.num_users, "num_items": log.num_items, "config": config,
            "dataset": {"sha256": log.checksum, "num_events": len(log)}, "metrics": metrics or {}}
    L = model_spec(cfg.model).history(cfg.model_params)
    return Bundle(model.cpu().eval(), meta, log.user_map, log.item_map, Histories.from_log(log, L), log.item_titles)
