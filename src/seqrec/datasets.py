"""Known public datasets: a local copy, or a verified download into a cache folder.

This is the only module that touches the network. Each dataset in `REMOTES` is one row of a table
(name, URL, checksum of the download, the files a complete copy holds, checksums of those files),
and one mechanism resolves and fetches them all. Resolution order:

1. the `data_dir` argument (the `--data-dir` flag);
2. the dataset's environment variable:

   ========================  ======================================================
   dataset                   variable (a folder holding the files)
   ========================  ======================================================
   ``ml-100k``               ``SEQREC_ML100K_DIR``, else ``SEQREC_DATA_DIR``
   ``ml-1m``                 ``SEQREC_ML1M_DIR``
   ``ml-latest-small``       ``SEQREC_ML_LATEST_SMALL_DIR``
   ``amazon-video-games``    ``SEQREC_AMAZON_VIDEO_GAMES_DIR``
   ========================  ======================================================

3. the cache (`$SEQREC_CACHE_DIR`, default `~/.cache/seqrec`), folder `<cache>/<name>`, downloading
   the public file into it on first use. The download's checksum is verified before anything is
   unpacked, and it is unpacked into a temporary folder that is renamed into place only once it
   holds the expected files, so an interrupted or corrupt download never leaves a copy behind.

Where the checksums come from: ml-100k's SHA-1 as pinned since the first release; the SHA-256 of
ml-1m.zip and ml-latest-small.zip as listed in TensorFlow Datasets' `url_checksums/movielens.txt`
(GroupLens publishes MD5s only: ml-1m.zip c4d9eecfca2ab87c1945afe126590906); the Amazon file's and
the per-file SHA-256s as measured on the copies described in the project's shared datasets README.
ml-1m's `ratings.dat` has no published checksum: a download is verified through the archive, and a
local `ratings.dat` is checked against the published number of ratings instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from seqrec.errors import DataError


@dataclass(frozen=True)
class Remote:
    """One public dataset: where to fetch it, how to check it, and what a complete local copy holds."""

    name: str                              # the dataset's name and its folder in the cache
    title: str                             # for messages, e.g. "MovieLens-1M"
    env: tuple[str, ...]                   # variables naming a local copy, first set wins
    url: str
    digest: tuple[str, str]                # (hashlib algorithm, hex digest) of the downloaded file
    member: str | None                     # folder inside the zip holding the files; None: the download is the file
    forms: tuple[tuple[str, ...], ...]     # file sets, any one of which is a complete copy; forms[0]: the download's
    checksums: Mapping[str, str | None]    # sha256 of the main files (None: no published checksum)
    num_events: int                        # events in the published file

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def form_in(self, folder: Path) -> tuple[str, ...] | None:
        """The first file set `folder` holds completely, None when it holds none."""
        return next((form for form in self.forms if all((folder / name).is_file() for name in form)), None)

    def describe_forms(self) -> str:
        return ", or ".join(" with ".join(form) for form in self.forms)


GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
REMOTES: dict[str, Remote] = {remote.name: remote for remote in (
    Remote("ml-100k", "MovieLens-100K", ("SEQREC_ML100K_DIR", "SEQREC_DATA_DIR"), GROUPLENS + "ml-100k.zip",
           ("sha1", "cd4dcac4241c8a4ad7badc7ca635da8a69dddb83"), "ml-100k", (("u.data",),),
           {"u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"}, 100_000),
    Remote("ml-1m", "MovieLens-1M", ("SEQREC_ML1M_DIR",), GROUPLENS + "ml-1m.zip",
           ("sha256", "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"), "ml-1m",
           (("ratings.dat",), ("ml-1m.txt", "item_map.tsv")),
           {"ratings.dat": None, "ml-1m.txt": "6c2c421d604029adde613f403caf09cca256d4bfcb621897a159b77175474827"},
           1_000_209),
    Remote("ml-latest-small", "MovieLens latest-small (2018-09-26)", ("SEQREC_ML_LATEST_SMALL_DIR",),
           GROUPLENS + "ml-latest-small.zip",
           ("sha256", "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"), "ml-latest-small",
           (("ratings.csv",),),
           {"ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"}, 100_836),
    # The SASRec authors' preprocessed Amazon Video Games reviews (Kang & McAuley, ICDM 2018), saved under the
    # name of the project's local copy; a folder holding the file under its published name works too. The
    # repository's data/Video.txt (as of commit 641c378) has the local copy's size and first and last lines.
    Remote("amazon-video-games", "Amazon Video Games (SASRec preprocessing)", ("SEQREC_AMAZON_VIDEO_GAMES_DIR",),
           "https://raw.githubusercontent.com/kang205/SASRec/master/data/Video.txt",
           ("sha256", "b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651"), None,
           (("video_games.txt",), ("Video.txt",)),
           {name: "b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651"
            for name in ("video_games.txt", "Video.txt")}, 287_107),
)}

# MovieLens-100K names kept for the code and tests written against them.
ML100K_URL = REMOTES["ml-100k"].url
ML100K_ZIP_SHA1 = REMOTES["ml-100k"].digest[1]
ML100K_RATINGS_SHA256 = REMOTES["ml-100k"].checksums["u.data"]
RATINGS_FILE, ITEMS_FILE = "u.data", "u.item"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def verify_file(path: Path, remote: Remote, verify: bool = True) -> str:
    """The sha256 of `path`, one of `remote`'s files; DataError when `verify` and it is not the published file."""
    checksum = file_digest(path)
    expected = remote.checksums.get(path.name)
    if verify and expected is not None and checksum != expected:
        raise DataError(f"{path}: checksum mismatch (sha256 {checksum}, expected {expected}); the file is not the "
                        f"published {remote.title} (set data.verify_checksum=false to use it anyway)")
    return checksum


def cache_dir() -> Path:
    return Path(os.environ.get("SEQREC_CACHE_DIR") or Path.home() / ".cache" / "seqrec")


def check_folder(remote: Remote, folder: Path, origin: str) -> tuple[str, ...]:
    """The file set of `remote.forms` that `folder` holds; a one-line DataError saying what is missing."""
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder not found ({origin}); it should hold the {remote.title} files "
                        f"({remote.describe_forms()})")
    if (form := remote.form_in(folder)) is None:
        hint = f" (or {' with '.join(remote.forms[1])})" if len(remote.forms) > 1 else ""
        raise DataError(f"{folder / remote.forms[0][0]}: file not found ({origin}){hint}; "
                        f"is this the {remote.name} folder?")
    return form


def _offline_hint(remote: Remote) -> str:
    place = (f"unpack it, and pass --data-dir PATH/{remote.member}" if remote.member
             else "put it in a folder, and pass --data-dir FOLDER")
    return f"download {remote.filename} elsewhere, {place} or set {' or '.join(remote.env)}"


def _fetch(url: str, out: Path, remote: Remote, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, out.open("wb") as handle:
            shutil.copyfileobj(response, handle)
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"could not download {remote.title} from {url} ({err}). If this machine is offline, "
                        f"{_offline_hint(remote)}") from None


def download(remote: Remote, target: Path, url: str | None = None, digest: str | None = None,
             timeout: float = 60) -> Path:
    """Download `remote` into `target / remote.name`, verified before it is unpacked or used; the folder.

    `url` and `digest` (hex, in `remote.digest`'s algorithm) replace the table's, e.g. for a mirror.
    Everything happens in a temporary folder inside `target`, renamed into place at the end, so a
    failure leaves `target` as it was.
    """
    url, (algorithm, expected) = url or remote.url, (remote.digest[0], digest or remote.digest[1])
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        fetched, unpacked = Path(tmp) / remote.filename, Path(tmp) / "unpacked"
        _fetch(url, fetched, remote, timeout)
        found = file_digest(fetched, algorithm)
        if found != expected:
            raise DataError(f"{url}: checksum mismatch ({algorithm} {found}, expected {expected}); the download is "
                            "corrupt or the file has changed; nothing was written")
        if remote.member is None:
            unpacked.mkdir()
            fetched.rename(unpacked / remote.forms[0][0])
        else:
            try:
                with zipfile.ZipFile(fetched) as zf:
                    zf.extractall(unpacked)
            except zipfile.BadZipFile as err:
                raise DataError(f"{url}: not a valid zip archive ({err})") from None
            unpacked = unpacked / remote.member
        if remote.form_in(unpacked) != remote.forms[0]:
            missing = "/".join(filter(None, (remote.member, remote.forms[0][0])))
            raise DataError(f"{url}: the download does not hold {missing}; nothing was written")
        final = target / remote.name
        if final.exists():
            shutil.rmtree(final)
        unpacked.rename(final)
    return final


def resolve(name: str, data_dir: str | Path | None = None, download_missing: bool = True) -> Path:
    """The folder holding dataset `name`'s files: from the argument, its environment variable or the cache."""
    remote = REMOTES[name]
    given = [(Path(data_dir), "--data-dir")] if data_dir is not None else []
    given += [(Path(os.environ[variable]), variable) for variable in remote.env if os.environ.get(variable)]
    if given:
        folder, origin = given[0][0].expanduser(), given[0][1]
        check_folder(remote, folder, origin)
        return folder
    cached = cache_dir() / remote.name
    if remote.form_in(cached) is not None:
        return cached
    if not download_missing:
        raise DataError(f"{remote.title} is not in the cache ({cached}); pass --data-dir or set "
                        f"{' or '.join(remote.env)}")
    return download(remote, cache_dir())


def download_ml100k(target: Path, url: str = ML100K_URL, sha1: str = ML100K_ZIP_SHA1, timeout: float = 60) -> Path:
    """Download and unpack ml-100k.zip into `target` (the folder holding ml-100k/), verified by SHA-1."""
    return download(REMOTES["ml-100k"], target, url, sha1, timeout)


def resolve_ml100k(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The folder holding MovieLens-100K's files, from the argument, the environment or the cache."""
    return resolve("ml-100k", data_dir, download)
