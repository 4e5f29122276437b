"""The public-dataset downloader against a loopback HTTP server, and the local-copy resolution."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import threading
import zipfile
from types import SimpleNamespace

import pytest

from seqrec import datasets
from seqrec.config import DataConfig
from seqrec.data.catalog import load_dataset
from seqrec.errors import DataError


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t10\n")
        zf.writestr("ml-100k/u.item", "1|Film (1999)|\n")
    return buffer.getvalue()


@pytest.fixture
def loopback():
    """A loopback HTTP server answering every GET with `files[path]` (404 when absent); `requests` logs the paths."""
    files: dict[str, bytes] = {}
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path not in files:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(files[self.path])))
            self.end_headers()
            self.wfile.write(files[self.path])

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(base=f"http://127.0.0.1:{httpd.server_port}", files=files, requests=requests)
    httpd.shutdown()


@pytest.fixture
def server(loopback):
    payload = zip_bytes()
    loopback.files["/ml-100k.zip"] = payload
    return f"{loopback.base}/ml-100k.zip", hashlib.sha1(payload).hexdigest()


def test_download_verifies_and_unpacks(server, tmp_path):
    url, sha1 = server
    folder = datasets.download_ml100k(tmp_path, url=url, sha1=sha1)
    assert (folder / "u.data").read_text() == "1\t1\t5\t10\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k"]            # no temporary leftovers


def test_download_with_wrong_checksum_writes_nothing(server, tmp_path):
    url, _ = server
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.download_ml100k(tmp_path, url=url, sha1="0" * 40)
    assert list(tmp_path.iterdir()) == []


def test_offline_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        datasets.download_ml100k(tmp_path, url="http://127.0.0.1:9/ml-100k.zip")


def test_resolution_order(tmp_path, monkeypatch):
    local = tmp_path / "copy"
    local.mkdir()
    (local / "u.data").write_text("")
    monkeypatch.setenv("SEQREC_DATA_DIR", str(local))
    assert datasets.resolve_ml100k() == local
    with pytest.raises(DataError, match="u.data: file not found"):
        datasets.resolve_ml100k(tmp_path)
    monkeypatch.delenv("SEQREC_DATA_DIR")
    monkeypatch.setenv("SEQREC_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="not in the cache"):
        datasets.resolve_ml100k(download=False)


# A new dataset's download: a tiny ml-latest-small archive and a tiny Amazon file, each with its own checksum.
RATINGS_CSV = "userId,movieId,rating,timestamp\n1,10,4.0,5\n1,20,3.5,5\n2,10,5.0,7\n"
MOVIES_CSV = 'movieId,title,genres\n10,"Film, The (1999)",Drama\n20,Other (2000),Comedy\n'


def latest_small_zip(**files: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in ({"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV} | files).items():
            zf.writestr(f"ml-latest-small/{name}", text)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def latest_small(loopback, tmp_path, monkeypatch):
    """ml-latest-small served by the loopback server, with the cache in tmp_path and no local copy set."""
    payload = latest_small_zip()
    loopback.files["/ml-latest-small.zip"] = payload
    remote = dataclasses.replace(datasets.REMOTES["ml-latest-small"], url=f"{loopback.base}/ml-latest-small.zip",
                                 digest=("sha256", sha256(payload)))
    monkeypatch.setitem(datasets.REMOTES, "ml-latest-small", remote)
    monkeypatch.setenv("SEQREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQREC_ML_LATEST_SMALL_DIR", raising=False)
    return remote


def test_a_new_dataset_downloads_into_the_cache_on_first_use_only(latest_small, loopback, tmp_path):
    cfg = DataConfig(dataset="ml-latest-small", verify_checksum=False)     # the fake ratings.csv is not the real one
    log = load_dataset(cfg)
    assert (len(log), log.num_users, log.num_items) == (3, 2, 2)
    assert log.item_titles.tolist() == ["", "Film, The (1999)", "Other (2000)"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["ml-latest-small"]   # no temporary leftovers
    assert load_dataset(cfg).checksum == log.checksum == sha256(RATINGS_CSV.encode())
    assert loopback.requests == ["/ml-latest-small.zip"]                     # the second load used the cache


def test_the_table_checksums_the_downloaded_files(latest_small):
    with pytest.raises(DataError, match=r"ratings\.csv: checksum mismatch .* not the published MovieLens latest-small"):
        load_dataset(DataConfig(dataset="ml-latest-small"))


def test_a_corrupt_download_is_refused_before_unpacking(latest_small, loopback, tmp_path, monkeypatch):
    loopback.files["/ml-latest-small.zip"] = latest_small_zip()[:-10]     # truncated in transit
    opened = []
    monkeypatch.setattr(datasets.zipfile, "ZipFile", lambda *args, **kwargs: opened.append(args))
    with pytest.raises(DataError, match=r"checksum mismatch \(sha256 [0-9a-f]{64}, expected") as error:
        datasets.resolve("ml-latest-small")
    assert "\n" not in str(error.value) and opened == []
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_archive_without_the_expected_files_writes_nothing(loopback, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("elsewhere/ratings.csv", RATINGS_CSV)
    loopback.files["/x.zip"] = payload = buffer.getvalue()
    with pytest.raises(DataError, match=r"does not hold ml-latest-small/ratings\.csv; nothing was written"):
        datasets.download(datasets.REMOTES["ml-latest-small"], tmp_path, f"{loopback.base}/x.zip", sha256(payload))
    assert list(tmp_path.iterdir()) == []


def test_a_plain_file_download_is_saved_under_the_local_copy_name(loopback, tmp_path):
    loopback.files["/Video.txt"] = payload = b"1 5\n1 7\n2 5\n"
    folder = datasets.download(datasets.REMOTES["amazon-video-games"], tmp_path, f"{loopback.base}/Video.txt",
                               sha256(payload))
    assert folder == tmp_path / "amazon-video-games"
    assert [p.name for p in folder.iterdir()] == ["video_games.txt"]
    assert (folder / "video_games.txt").read_bytes() == payload


@pytest.mark.parametrize(("name", "what", "where"), [
    ("ml-1m", "download ml-1m.zip elsewhere, unpack it, and pass --data-dir PATH/ml-1m", "SEQREC_ML1M_DIR"),
    ("ml-latest-small", "download ml-latest-small.zip elsewhere", "SEQREC_ML_LATEST_SMALL_DIR"),
    ("amazon-video-games", "download Video.txt elsewhere, put it in a folder, and pass --data-dir FOLDER",
     "SEQREC_AMAZON_VIDEO_GAMES_DIR"),
])
def test_offline_says_what_to_download_and_where_to_point(tmp_path, name, what, where):
    with pytest.raises(DataError, match="could not download") as error:
        datasets.download(datasets.REMOTES[name], tmp_path, url="http://127.0.0.1:9/file")
    assert what in str(error.value) and where in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_new_datasets_resolve_flag_then_variable_then_cache(tmp_path, monkeypatch):
    flag, variable, cached = tmp_path / "flag", tmp_path / "variable", tmp_path / "cache" / "ml-1m"
    forms = ((flag, ["ratings.dat"]), (variable, ["ml-1m.txt", "item_map.tsv"]), (cached, ["ratings.dat"]))
    for folder, files in forms:
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text("")
    monkeypatch.setenv("SEQREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEQREC_ML1M_DIR", str(variable))
    monkeypatch.setenv("SEQREC_DATA_DIR", str(tmp_path / "nope"))          # ml-100k's variable: not ml-1m's
    assert datasets.resolve("ml-1m", flag) == flag
    assert datasets.resolve("ml-1m") == variable
    monkeypatch.delenv("SEQREC_ML1M_DIR")
    assert datasets.resolve("ml-1m", download_missing=False) == cached


def test_ml100k_has_its_own_variable_before_the_old_one(tmp_path, monkeypatch):
    for name in ("own", "old"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "u.data").write_text("")
    monkeypatch.setenv("SEQREC_DATA_DIR", str(tmp_path / "old"))
    monkeypatch.setenv("SEQREC_ML100K_DIR", str(tmp_path / "own"))
    assert datasets.resolve_ml100k() == tmp_path / "own"
