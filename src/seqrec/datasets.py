"""Known public datasets: a local copy, or a verified download into a cache folder.

This is the only module that touches the network. Resolution order for MovieLens-100K:
`data_dir` argument (the `--data-dir` flag), then `$SEQREC_DATA_DIR`, then the cache
(`$SEQREC_CACHE_DIR`, default `~/.cache/seqrec`), downloading `ml-100k.zip` from GroupLens
into the cache when it is not there yet.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from seqrec.errors import DataError

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_ZIP_SHA1 = "cd4dcac4241c8a4ad7badc7ca635da8a69dddb83"
ML100K_RATINGS_SHA256 = "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
RATINGS_FILE, ITEMS_FILE = "u.data", "u.item"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("SEQREC_CACHE_DIR") or Path.home() / ".cache" / "seqrec")


def _check_folder(folder: Path, origin: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder not found ({origin}); it should hold the MovieLens-100K "
                        f"files ({RATINGS_FILE}, {ITEMS_FILE})")
    if not (folder / RATINGS_FILE).is_file():
        raise DataError(f"{folder / RATINGS_FILE}: file not found ({origin}); is this the ml-100k folder?")
    return folder


def download_ml100k(target: Path, url: str = ML100K_URL, sha1: str = ML100K_ZIP_SHA1, timeout: float = 60) -> Path:
    """Download and unpack ml-100k.zip into `target` (the folder holding ml-100k/), verified by SHA-1.

    Unpacks into a temporary folder first and renames it, so an interrupted download never
    leaves a half-written copy behind.
    """
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        archive = Path(tmp) / "ml-100k.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as err:
            raise DataError(
                f"could not download MovieLens-100K from {url} ({err}). If this machine is offline, download "
                f"ml-100k.zip elsewhere, unpack it, and pass --data-dir PATH/ml-100k or set SEQREC_DATA_DIR"
            ) from None
        digest = file_digest(archive, "sha1")
        if digest != sha1:
            raise DataError(f"{url}: checksum mismatch (sha1 {digest}, expected {sha1}); the download is "
                            "corrupt or the file has changed; nothing was written")
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except zipfile.BadZipFile as err:
            raise DataError(f"{url}: not a valid zip archive ({err})") from None
        final = target / "ml-100k"
        if final.exists():
            shutil.rmtree(final)
        (Path(tmp) / "ml-100k").rename(final)
    return final


def resolve_ml100k(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The folder holding MovieLens-100K's files, from the argument, the environment or the cache."""
    if data_dir is not None:
        return _check_folder(Path(data_dir).expanduser(), "--data-dir")
    if os.environ.get("SEQREC_DATA_DIR"):
        return _check_folder(Path(os.environ["SEQREC_DATA_DIR"]).expanduser(), "SEQREC_DATA_DIR")
    cached = cache_dir() / "ml-100k"
    if (cached / RATINGS_FILE).is_file():
        return cached
    if not download:
        raise DataError(f"MovieLens-100K is not in the cache ({cached}); pass --data-dir or set SEQREC_DATA_DIR")
    return download_ml100k(cache_dir())
