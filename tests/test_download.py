"""The book downloader against a real HTTP server on 127.0.0.1 (and a failing one)."""

import http.server
import threading

import pytest

from scratchrnn.cli.commands import main
from scratchrnn.data import corpus as data
from scratchrnn.errors import ScratchRNNError

BOOK = ("*** START OF THE PROJECT GUTENBERG EBOOK A TALE OF TWO CITIES ***\r\n"
        + "It was the best of times, it was the worst of times.\r\n" * 60
        + "*** END OF THE PROJECT GUTENBERG EBOOK A TALE OF TWO CITIES ***\r\nlicence\r\n")


@pytest.fixture
def server():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path == "/book.txt":
                body = ("\ufeff" + BOOK).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(500 if self.path == "/broken" else 404)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def test_falls_back_to_second_url_and_caches(server, monkeypatch):
    base, hits = server
    monkeypatch.setattr(data, "BOOK_URLS", (f"{base}/broken", f"{base}/book.txt"))
    path = data.book_path(data.BOOK_URLS)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf*** START")
    assert path.parent == data.cache_dir()
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, no temp left
    corpus = data.load_corpus(None)
    assert corpus.name == "pg98" and len(corpus.train) > 2000
    assert hits == ["/broken", "/book.txt"]
    data.book_path((f"{base}/book.txt",))
    assert len(hits) == 2  # second use reads the cache


def test_failing_server_is_one_clear_line(server, capsys):
    base, _ = server
    with pytest.raises(ScratchRNNError, match="offline.*`text`") as e:
        data.download((f"{base}/broken", f"{base}/missing"), data.cache_dir() / "pg98.txt",
                      timeout=5)
    assert "\n" not in str(e.value)
    assert not (data.cache_dir() / "pg98.txt").exists()


def test_cli_offline_message(capsys):
    # conftest points the book at a closed port on 127.0.0.1: what an offline user sees
    assert main(["train", "--max-steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("scratchrnn: error: could not download the book")
    assert "--text" in err and "\n" not in err


def test_not_found_is_refused(server, monkeypatch):
    base, _ = server
    with pytest.raises(ScratchRNNError):
        data.download((f"{base}/missing",), data.cache_dir() / "x.txt", timeout=5)
