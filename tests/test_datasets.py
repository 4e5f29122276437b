"""The MovieLens downloader against a loopback HTTP server, and the local-copy resolution."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from seqrec import datasets
from seqrec.errors import DataError


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t10\n")
        zf.writestr("ml-100k/u.item", "1|Film (1999)|\n")
    return buffer.getvalue()


@pytest.fixture
def server():
    payload = zip_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/ml-100k.zip", hashlib.sha1(payload).hexdigest()
    httpd.shutdown()


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
