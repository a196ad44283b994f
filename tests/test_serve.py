"""The playground server (scratchrnn.serve): every endpoint, every class of bad request (a 4xx
with one line of JSON, and the server still answers), several clients at once, streaming, the
clamp, and Ctrl-C on a real `python -m scratchrnn serve`."""

import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import tiny_run

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.inside.page import layer_values
from scratchrnn.serve import server as serve
from scratchrnn.serve.requests import GENERATE_DEFAULTS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("serve"), "lstm")


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve.make_server(run_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def ckpt(run_dir):
    return sr.load_checkpoint(run_dir)


def request(server, method, path, body=None, headers=None, timeout=30):
    """(status, headers, body bytes); body: a dict (sent as JSON) or raw bytes."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=timeout)
    hdrs = dict(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


def raw(server, data: bytes, timeout=10, half_close=False) -> bytes:
    """Send bytes as they are (what http.client would not) and read the whole answer;
    half_close: then say that nothing more comes (shutdown of the sending side)."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def expected_text(ckpt, **kw):
    args = dict(GENERATE_DEFAULTS, **kw)
    args.pop("num_samples")
    if args["beam"] is not None:
        args["temperature"] = kw.get("temperature")
    clamp = args.pop("clamp")
    if clamp is not None:
        clamp = (clamp["layer"], clamp["unit"], clamp["value"])
    return "".join(sr.generate(ckpt.model, ckpt.vocab, clamp=clamp, **args))


def assert_alive(server):
    status, _, body = request(server, "GET", "/api/model")
    assert status == 200 and json.loads(body)["cell"] == "lstm"


# ---------------------------------------------------------------------------- endpoints


def test_the_page_is_self_contained(server):
    status, headers, body = request(server, "GET", "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    script_src = csp.split("script-src")[1].split(";")[0]
    assert "default-src 'none'" in csp and "unsafe-inline" not in script_src
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert page.count(f'<script nonce="{nonce}">') == 2 and "<style>" in page
    assert "{{" not in page and "ScratchRNNInside" in page  # visualize's renderer, inlined
    assert nonce not in request(server, "GET", "/")[2].decode()  # a fresh nonce each time
    # nothing loaded from anywhere: no src/href to another host, no external script or sheet
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"<script[^>]+src|<link[^>]+stylesheet|@import", page, re.I)
    # the only URL is SVG's namespace name, which nothing fetches
    assert re.findall(r"https?://[^\s\"']*", page) == ["http://www.w3.org/2000/svg"]


def test_model_card(server, ckpt):
    status, headers, body = request(server, "GET", "/api/model")
    card = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert card["cell"] == "lstm" and card["layers"] == 2 and card["hidden"] == 16
    assert card["parameters"] == ckpt.model.num_params()
    assert card["vocab"] == ckpt.vocab.chars and card["step"] == 40
    assert card["val_loss"] == pytest.approx(ckpt.meta["history"][-1]["val_loss"])
    assert card["limits"]["prompt"] == serve.MAX_PROMPT
    assert card["limits"]["beam"] == 256 and card["limits"]["num_samples"] == 1000


def test_the_card_is_json_whatever_the_run_logged(ckpt):
    ckpt.meta["history"].append({"step": 41, "val_loss": float("nan")})
    ckpt.meta["elapsed_s"] = float("inf")
    card = serve.model_card(ckpt)
    assert card["val_loss"] is None and card["training_seconds"] is None
    json.dumps(card, allow_nan=False)


def test_inspect_gives_the_inspection_of_the_text(server, ckpt):
    text = 'It was "the best" (of times).\nIt was <b>&amp;</b>'
    status, headers, body = request(server, "POST", "/api/inspect", {"text": text})
    assert status == 200 and headers["Content-Type"] == "application/json", body
    got = json.loads(body)
    want = sr.inspect(ckpt.model, ckpt.vocab, text)
    assert got == json.loads(json.dumps(want.to_dict()))
    assert got["text"] == text and got["num_layers"] == 2 and got["hidden"] == 16
    assert got["mean_surprisal"] == pytest.approx(want.mean_surprisal)
    h = layer_values(got, 1)["h"]  # (T, H)
    half_step = 1 / (got["acts"]["layers"][1]["h"]["levels"] - 1)  # h spans [-1, 1]
    np.testing.assert_allclose(h, want.layers[1]["h"], atol=half_step + 1e-6)


@pytest.mark.parametrize("kw", [
    dict(prime="It was", length=300, seed=3),
    dict(prime="", length=50, temperature=1.3, top_k=5, top_p=0.9, seed=None),
    dict(prime="the age", length=80, argmax=True),
    dict(prime="It was", length=200, seed=1, clamp={"layer": 1, "unit": 5, "value": 1.0}),
    dict(prime="It was", length=200, seed=1, clamp={"layer": 0, "unit": 2, "value": -0.7}),
    dict(prime="It was", length=300, seed=3, stop_at=" "),
    dict(prime="It was", length=300, seed=3, stop_at="\n\n"),
    dict(prime="It was", length=40, beam=4),
    dict(prime="It was", length=60, beam=2, stop_at="the", temperature=None),
])
def test_generate_streams_what_generate_gives(server, ckpt, kw):
    status, headers, body = request(server, "POST", "/api/generate", kw)
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), body
    text = body.decode()
    assert len(text) == kw["length"] or "stop_at" in kw
    if kw.get("seed", 0) is not None:  # seed None draws a fresh one: not reproducible
        assert text == expected_text(ckpt, **kw)


def test_num_samples_gives_a_list_of_the_samples_of_seed_plus_i(server, ckpt):
    kw = dict(prime="It was", length=50, seed=6, stop_at="\n")
    status, headers, body = request(server, "POST", "/api/generate", dict(kw, num_samples=3))
    assert status == 200 and headers["Content-Type"] == "application/json", body
    want = [expected_text(ckpt, **dict(kw, seed=6 + i)) for i in range(3)]
    assert json.loads(body) == {"samples": want} and len(set(want)) == 3
    one = request(server, "POST", "/api/generate", dict(kw, num_samples=1, seed=None))[2]
    assert len(json.loads(one)["samples"]) == 1


def test_defaults_fill_missing_fields(server, ckpt):
    status, _, body = request(server, "POST", "/api/generate", {})
    assert status == 200 and body.decode() == expected_text(ckpt)


def test_a_clamp_changes_the_text_and_no_clamp_does_not(server, ckpt):
    base = dict(prime="It was", length=200, temperature=0.5, seed=4)
    plain = request(server, "POST", "/api/generate", base)[2]
    assert request(server, "POST", "/api/generate", dict(base, clamp=None))[2] == plain
    changed = sum(request(server, "POST", "/api/generate",
                          dict(base, clamp={"layer": layer, "unit": u, "value": v}))[2] != plain
                  for layer in (0, 1) for u in range(0, 16, 3) for v in (-1.0, 1.0))
    assert changed >= 18  # of 24 clamps


# ---------------------------------------------------------------------------- bad requests

BIG = json.dumps({"prime": "x" * (serve.MAX_BODY + 10)}).encode()
BAD = {
    # (method, path, body, extra headers) -> status
    "bad json": ("POST", "/api/generate", b'{"prime": "It', None, 400),
    "json nan": ("POST", "/api/generate", b'{"temperature": NaN}', None, 400),
    "json infinity": ("POST", "/api/generate", b'{"temperature": Infinity}', None, 400),
    "json a list": ("POST", "/api/generate", b'["It was"]', None, 400),
    "json deep": ("POST", "/api/generate", b"[" * 50000 + b"]" * 50000, None, 413),
    "json nested too deep": ("POST", "/api/inspect", b"[" * 20000 + b"]" * 20000, None, 400),
    "not utf-8": ("POST", "/api/generate", b'{"prime": "\xff\xfe"}', None, 400),
    "json a key twice": ("POST", "/api/generate", b'{"length": 1, "length": 5000}', None, 400),
    "json a clamp key twice": ("POST", "/api/generate",
                               b'{"clamp": {"layer": 0, "unit": 0, "value": 1, "unit": 3}}',
                               None, 400),
    "prime lone surrogate": ("POST", "/api/generate", {"prime": "It \ud800"}, None, 400),
    "inspect lone surrogate": ("POST", "/api/inspect", {"text": "\udfffabc"}, None, 400),
    "prime pair in the wrong order": ("POST", "/api/generate", {"prime": "\ude00\ud83d"}, None,
                                      400),
    "inspect Cyrillic and half a pair": ("POST", "/api/inspect", {"text": "Мой \ud83d"}, None,
                                         400),
    "stop_at half a surrogate pair": ("POST", "/api/generate", {"stop_at": "\ud800"}, None,
                                      400),
    "prime of raw bytes not UTF-8": ("POST", "/api/generate", b'{"prime": "\xd0"}', None, 400),
    "too big": ("POST", "/api/generate", BIG, None, 413),
    "not json content type": ("POST", "/api/generate", b"{}", {"Content-Type": "text/plain"},
                              415),
    "form post": ("POST", "/api/generate", b"prime=x",
                  {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "unknown field": ("POST", "/api/generate", {"prime": "a", "file": "/etc/passwd"}, None, 400),
    "unknown inspect field": ("POST", "/api/inspect", {"text": "a", "path": "x"}, None, 400),
    "temperature zero": ("POST", "/api/generate", {"temperature": 0}, None, 400),
    "temperature negative": ("POST", "/api/generate", {"temperature": -1}, None, 400),
    "temperature a string": ("POST", "/api/generate", {"temperature": "0.8"}, None, 400),
    "temperature true": ("POST", "/api/generate", {"temperature": True}, None, 400),
    "temperature huge": ("POST", "/api/generate", b'{"temperature": 1e999}', None, 400),
    "top_k zero": ("POST", "/api/generate", {"top_k": 0}, None, 400),
    "top_k fraction": ("POST", "/api/generate", {"top_k": 1.5}, None, 400),
    "top_p zero": ("POST", "/api/generate", {"top_p": 0}, None, 400),
    "top_p above one": ("POST", "/api/generate", {"top_p": 1.5}, None, 400),
    "length zero": ("POST", "/api/generate", {"length": 0}, None, 400),
    "length too long": ("POST", "/api/generate", {"length": serve.MAX_LENGTH + 1}, None, 400),
    "length float": ("POST", "/api/generate", {"length": 10.0}, None, 400),
    "length huge int": ("POST", "/api/generate", b'{"length": 1' + b"0" * 5000 + b"}", None,
                        400),
    "seed negative": ("POST", "/api/generate", {"seed": -1}, None, 400),
    "seed too big": ("POST", "/api/generate", {"seed": 2**64}, None, 400),
    "argmax a string": ("POST", "/api/generate", {"argmax": "yes"}, None, 400),
    "prime a number": ("POST", "/api/generate", {"prime": 5}, None, 400),
    "prime too long": ("POST", "/api/generate", {"prime": "a" * (serve.MAX_PROMPT + 1)}, None,
                       400),
    "prime unknown char": ("POST", "/api/generate", {"prime": "bell\x07"}, None, 400),
    "clamp a list": ("POST", "/api/generate", {"clamp": [0, 1, 1.0]}, None, 400),
    "clamp layer too high": ("POST", "/api/generate",
                             {"clamp": {"layer": 2, "unit": 0, "value": 1}}, None, 400),
    "clamp unit too high": ("POST", "/api/generate",
                            {"clamp": {"layer": 0, "unit": 16, "value": 1}}, None, 400),
    "clamp value too big": ("POST", "/api/generate",
                            {"clamp": {"layer": 0, "unit": 0, "value": 11}}, None, 400),
    "clamp unknown key": ("POST", "/api/generate",
                          {"clamp": {"layer": 0, "unit": 0, "value": 1, "c": 1}}, None, 400),
    "clamp missing key": ("POST", "/api/generate", {"clamp": {"layer": 0, "unit": 0}}, None,
                          400),
    # sampling options (issue 31); a request does at most MAX_LENGTH model steps
    "beam zero": ("POST", "/api/generate", {"beam": 0}, None, 400),
    "beam too wide": ("POST", "/api/generate", {"beam": 257}, None, 400),
    "beam a string": ("POST", "/api/generate", {"beam": "3"}, None, 400),
    "beam with temperature": ("POST", "/api/generate", {"beam": 2, "temperature": 0.8}, None,
                              400),
    "beam with top_k": ("POST", "/api/generate", {"beam": 2, "top_k": 3}, None, 400),
    "beam with argmax": ("POST", "/api/generate", {"beam": 2, "argmax": True}, None, 400),
    "beam times length": ("POST", "/api/generate", {"beam": 4, "length": 2000}, None, 400),
    "num_samples zero": ("POST", "/api/generate", {"num_samples": 0}, None, 400),
    "num_samples a float": ("POST", "/api/generate", {"num_samples": 2.0}, None, 400),
    "num_samples too many": ("POST", "/api/generate", {"num_samples": 10**6}, None, 400),
    "num_samples times length": ("POST", "/api/generate", {"num_samples": 30, "length": 200},
                                 None, 400),
    "num_samples with beam": ("POST", "/api/generate", {"num_samples": 2, "beam": 2}, None,
                              400),
    "stop_at empty": ("POST", "/api/generate", {"stop_at": ""}, None, 400),
    "stop_at a number": ("POST", "/api/generate", {"stop_at": 10}, None, 400),
    "stop_at too long": ("POST", "/api/generate", {"stop_at": "ab" * 200}, None, 400),
    "stop_at lone surrogate": ("POST", "/api/generate", {"stop_at": "\ud800"}, None, 400),
    "inspect empty": ("POST", "/api/inspect", {"text": ""}, None, 400),
    "inspect missing text": ("POST", "/api/inspect", {}, None, 400),
    "inspect unknown char": ("POST", "/api/inspect", {"text": "tab\x07"}, None, 400),
    "inspect too long": ("POST", "/api/inspect", {"text": "a" * (serve.MAX_PROMPT + 1)}, None,
                         400),
    "inspect long once cleaned": ("POST", "/api/inspect", {"text": "\ufdfd" * 400}, None, 400),
    "prime long once cleaned": ("POST", "/api/generate", {"prime": "\ufdfd" * 400}, None, 400),
    "unknown path": ("GET", "/etc/passwd", None, None, 404),
    "path climbing": ("GET", "/../../etc/passwd", None, None, 404),
    "static file": ("GET", "/playground.html", None, None, 404),
    "query string": ("GET", "/api/model?path=/etc/passwd", None, None, 404),
    "GET generate": ("GET", "/api/generate", None, None, 405),
    "POST model": ("POST", "/api/model", {}, None, 405),
    "PUT page": ("PUT", "/", b"x", None, 405),
    "DELETE inspect": ("DELETE", "/api/inspect", None, None, 405),
    "unknown method": ("BREW", "/", None, None, 405),
    "foreign host": ("GET", "/api/model", None, {"Host": "attacker.example:8000"}, 403),
    "foreign IPv6 host": ("GET", "/api/model", None, {"Host": "[fe80::1]:8000"}, 403),
    # names that only look like loopback, as a DNS-rebinding page would send them
    "host loopback-like name": ("GET", "/api/model", None, {"Host": "127.0.0.1.nip.io"}, 403),
    "host localhost subdomain": ("GET", "/api/model", None,
                                 {"Host": "localhost.attacker.example"}, 403),
    "host hex then a name": ("GET", "/api/model", None, {"Host": "0x7f.1.evil"}, 403),
    "host five parts": ("GET", "/api/model", None, {"Host": "127.0.0.1.1"}, 403),
    "host other ipv6": ("GET", "/api/model", None, {"Host": "[::2]:8000"}, 403),
}


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "[::1]:8000", "[::1]", "::1",
                                  "127.1:8000", "0x7f.1", "2130706433", "127.255.255.254:80",
                                  "0177.0.0.1", "LocalHost.", "[::ffff:127.0.0.1]:8000"])
def test_loopback_host_headers_are_served(server, host):
    status, _, _ = request(server, "GET", "/api/model", headers={"Host": host})
    assert status == 200


def assert_one_line_error(status, body, want):
    assert status == want, body[:300]
    assert body.count(b"\n") == 0 and b"Traceback" not in body
    err = json.loads(body)
    assert list(err) == ["error"] and len(err["error"]) > 10


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_request(server, name, capsys):
    method, path, body, headers, want = BAD[name]
    status, _, answer = request(server, method, path, body, headers)
    assert_one_line_error(status, answer, want)
    log = capsys.readouterr().err
    assert "Traceback" not in log and len(log.strip().splitlines()) == 1, log
    assert_alive(server)


POST = b"POST /api/generate HTTP/1.1\r\nContent-Type: application/json\r\n"
MALFORMED = {
    # name: (bytes sent, then half-closed?) -> status
    "no content-length": (POST + b"\r\n{}", False, 411),
    "negative length": (POST + b"Content-Length: -5\r\n\r\n{}", False, 400),
    "signed length": (POST + b"Content-Length: +2\r\n\r\n{}", False, 400),
    "hex length": (POST + b"Content-Length: 0x2\r\n\r\n{}", False, 400),
    "length list": (POST + b"Content-Length: 2, 2\r\n\r\n{}", False, 400),
    # a superscript two is a digit to isdigit()
    "unicode digit length": (POST + b"Content-Length: \xc2\xb2\r\n\r\n{}", False, 400),
    "two lengths that differ": (POST + b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
                                False, 400),
    "two equal lengths": (POST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", False,
                          400),
    "chunked": (POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False,
                411),
    "chunked and a length": (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
                             b"{}", False, 400),
    "identity encoding": (POST + b"Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n"
                          b"{}", False, 400),
    "body on GET": (b"GET /api/model HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", False, 400),
    "body shorter than its length": (POST + b"Content-Length: 100\r\n\r\n{}", True, 400),
    "headers cut off": (POST + b"Content-Length: 2\r\n", True, 400),
    "two hosts": (b"GET /api/model HTTP/1.1\r\nHost: localhost\r\nHost: attacker.example"
                  b"\r\n\r\n", False, 400),
    "space before colon": (b"GET /api/model HTTP/1.1\r\nHost : attacker.example\r\n\r\n",
                           False, 400),
    "folded header": (POST + b"Content-Length: 2\r\n 5\r\n\r\n{}", False, 400),
    "bare CR in a header": (b"GET /api/model HTTP/1.1\r\nX-A: 1\rHost: attacker.example\r\n"
                            b"\r\n", False, 400),
    "NUL in a header": (b"GET /api/model HTTP/1.1\r\nX-A: \x00\r\n\r\n", False, 400),
    "header without colon": (b"GET /api/model HTTP/1.1\r\nHello\r\n\r\n", False, 400),
    "header line too long": (b"GET /api/model HTTP/1.1\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
                             False, 431),
    "too many headers": (b"GET /api/model HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
                         False, 431),
    "HTTP/0.9": (b"GET /\r\n", False, 400),  # answered at once, not after a wait for headers
    "HTTP/0.9 POST": (b"POST /api/generate\r\n", False, 400),
    "garbage": (b"GARBAGE\r\n\r\n", False, 400),
    "two spaces": (b"GET  /api/model HTTP/1.1\r\n\r\n", False, 400),
    "HTTP/9.9": (b"GET / HTTP/9.9\r\n\r\n", False, 505),
    "HTTP/2.0": (b"GET / HTTP/2.0\r\n\r\n", False, 505),
    "absolute-form target": (b"GET http://127.0.0.1:8000/api/model HTTP/1.1\r\n\r\n", False,
                             400),
    "asterisk target": (b"OPTIONS * HTTP/1.1\r\n\r\n", False, 400),
    "NUL in the target": (b"GET /api/model\x00.html HTTP/1.1\r\n\r\n", False, 400),
    "non-ASCII target": (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", False, 400),
    "lowercase method": (b"get /api/model HTTP/1.1\r\n\r\n", False, 405),
    "HEAD": (b"HEAD / HTTP/1.1\r\n\r\n", False, 405),
    "request line too long": (b"GET /" + b"a" * 70000 + b" HTTP/1.0\r\n\r\n", False, 414),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_requests(server, name, capsys):
    """Framing refused at once (not after a timeout): a 4xx, one line of JSON, a closed
    connection, one line in the log."""
    data, half_close, want = MALFORMED[name]
    t0 = time.perf_counter()
    answer = raw(server, data, half_close=half_close)
    assert time.perf_counter() - t0 < 3  # the module's server waits 10 s for a whole request
    head, _, body = answer.partition(b"\r\n\r\n")
    assert int(head.split()[1]) == want, answer[:300]
    assert_one_line_error(want, body, want)
    log = capsys.readouterr().err
    assert "Traceback" not in log and len(log.strip().splitlines()) == 1, log
    assert_alive(server)


def test_a_size_is_refused_before_the_body_is_read(server):
    """Content-Length over the cap: refused at once, without waiting for a body never sent."""
    t0 = time.perf_counter()
    answer = raw(server, b"POST /api/generate HTTP/1.0\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 999999999\r\n\r\n")
    assert b" 413 " in answer.split(b"\r\n")[0] and time.perf_counter() - t0 < 5


def test_an_internal_failure_is_a_500_line_and_the_server_lives(server, capsys, monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(server.RequestHandlerClass.playground, "generate", broken)
    status, _, body = request(server, "POST", "/api/generate", {})
    assert_one_line_error(status, body, 500)
    log = capsys.readouterr().err
    assert log.count("\n") == 1 and "RuntimeError: something unexpected" in log
    assert "Traceback" not in log
    monkeypatch.undo()
    assert_alive(server)


# ---------------------------------------------------------------------------- hostile clients


@pytest.fixture
def make(ckpt):
    """A server of the test's own, with the bounds it shortens (make_server's arguments)."""
    servers = []

    def start(**bounds):
        srv = serve.make_server(ckpt, "127.0.0.1", 0, **bounds)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def wait_until(cond, seconds=5.0) -> bool:
    deadline = time.perf_counter() + seconds
    while not cond():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_all(s, seconds=5.0) -> bytes:
    s.settimeout(seconds)
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_trickled_request_is_cut_off_as_a_whole(make, capsys):
    """One byte every 0.1 s never stalls a read for long, yet the request as a whole is given
    its 408 once the request time (1 s here) is spent, and the thread is free again."""
    srv = make(request_time=1.0)
    data = POST + b"Content-Length: 2\r\nX-Slow: " + b"a" * 200
    with socket.create_connection(srv.server_address[:2], timeout=5) as s:
        t0, answer = time.perf_counter(), b""
        for i in range(len(data)):
            if time.perf_counter() - t0 > 4:
                break
            s.sendall(data[i:i + 1])
            if select.select([s], [], [], 0.1)[0]:
                answer = read_all(s)
                break
        elapsed = time.perf_counter() - t0
    assert answer.startswith(b"HTTP/1.0 408"), answer[:200]
    assert 0.9 < elapsed < 2.5
    assert_one_line_error(408, answer.partition(b"\r\n\r\n")[2], 408)
    log = capsys.readouterr().err
    assert "Traceback" not in log and "408" in log
    assert wait_until(lambda: srv.active == 0)
    assert_alive(srv)


def test_a_body_shorter_than_its_length_gets_a_408(make, capsys):
    srv = make(request_time=1.0)
    with socket.create_connection(srv.server_address[:2]) as s:
        s.sendall(POST + b"Content-Length: 100\r\n\r\n{")  # and then nothing
        assert_alive(srv)  # others are served meanwhile
        t0 = time.perf_counter()
        answer = read_all(s)
    assert answer.startswith(b"HTTP/1.0 408") and time.perf_counter() - t0 < 2, answer[:200]
    assert "body took over 1 s" in capsys.readouterr().err
    assert_alive(srv)


def test_an_idle_connection_is_closed_quietly(make, capsys):
    """A connection that asks nothing (a browser's preconnect) is closed after the request
    time, without an answer to a question never asked and without a line in the log."""
    srv = make(request_time=0.5)
    with socket.create_connection(srv.server_address[:2]) as s:
        t0 = time.perf_counter()
        assert read_all(s) == b"" and time.perf_counter() - t0 < 2
    assert wait_until(lambda: srv.active == 0)
    assert capsys.readouterr().err == ""


def test_one_address_cannot_take_every_slot(make):
    """Ten connections from 127.0.0.2 trickle their headers: three hold that address's slots,
    the rest get a 503 at once, and clients from other addresses are served promptly."""
    srv = make(max_connections=8, max_per_client=3)
    hostile, stop = [], threading.Event()
    try:
        for _ in range(10):
            hostile.append(socket.create_connection(srv.server_address[:2], timeout=5,
                                                    source_address=("127.0.0.2", 0)))
    except OSError as e:
        pytest.skip(f"127.0.0.2 is not usable here: {e}")

    def trickle():
        while not stop.wait(0.1):
            for s in hostile:
                try:
                    s.send(b"X")
                except OSError:
                    pass

    thread = threading.Thread(target=trickle, daemon=True)
    try:
        for s in hostile:
            s.sendall(b"GET /api/model HTTP/1.1\r\nX-Slow: ")
        thread.start()
        assert wait_until(lambda: srv.active == 3 and srv.clients == {"127.0.0.2": 3})
        refused, t0 = set(), time.perf_counter()
        while len(refused) < 7 and time.perf_counter() - t0 < 3:
            refused.update(select.select(set(hostile) - refused, [], [], 0.1)[0])
        assert len(refused) == 7 and not select.select(set(hostile) - refused, [], [], 0)[0]
        for s in refused:
            answer = s.recv(1000)
            assert answer.startswith(b"HTTP/1.0 503") and b"from 127.0.0.2" in answer
        t0 = time.perf_counter()
        assert_alive(srv)  # from 127.0.0.1
        with socket.create_connection(srv.server_address[:2], timeout=5,
                                      source_address=("127.0.0.3", 0)) as s:
            s.sendall(b"GET /api/model HTTP/1.0\r\n\r\n")
            assert read_all(s).startswith(b"HTTP/1.0 200")
        assert time.perf_counter() - t0 < 2
    finally:
        stop.set()
        thread.join(5)
        for s in hostile:
            s.close()
    assert wait_until(lambda: srv.active == 0 and srv.clients == {})


def test_a_client_that_stops_reading_is_let_go(make, monkeypatch, capsys):
    """A client that reads the status line and then nothing: once the socket's buffers are
    full, the stream waits at most the write time (1 s here) in all, then frees its thread."""
    srv = make(write_time=1.0)

    def flood(*a, **kw):  # 13 MB: far more than the buffers between the two sockets hold
        for _ in range(200):
            yield "x" * 65536

    monkeypatch.setattr(srv.RequestHandlerClass.playground, "generate", flood)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(srv.server_address[:2])
        s.sendall(POST + b"Content-Length: 2\r\n\r\n{}")
        s.settimeout(5)
        assert s.recv(12) == b"HTTP/1.0 200"
        t0 = time.perf_counter()
        assert wait_until(lambda: srv.active == 0, 10), "the stalled stream kept its thread"
        assert time.perf_counter() - t0 < 4
    assert "Traceback" not in capsys.readouterr().err
    assert_alive(srv)


def test_a_keep_alive_connection_is_closed_after_its_answer(server):
    """One request per connection (HTTP/1.0 answers): no idle keep-alive connection holds a
    thread between requests."""
    with socket.create_connection(server.server_address[:2]) as s:
        s.sendall(b"GET /api/model HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive"
                  b"\r\n\r\n")
        t0 = time.perf_counter()
        answer = read_all(s)
    assert answer.startswith(b"HTTP/1.0 200") and answer.count(b"HTTP/1.") == 1
    assert time.perf_counter() - t0 < 2


def test_connections_past_the_cap_get_a_503_and_free_their_slots(make):
    srv = make(max_connections=3)
    idle = [socket.create_connection(srv.server_address[:2]) for _ in range(3)]
    try:
        assert wait_until(lambda: srv.active == 3)
        with socket.create_connection(srv.server_address[:2]) as s:
            answer = read_all(s)
        assert answer.startswith(b"HTTP/1.0 503") and b'{"error": "too many' in answer
    finally:
        for s in idle:
            s.close()
    assert wait_until(lambda: srv.active == 0 and srv.clients == {})
    assert_alive(srv)


def test_no_request_opens_a_file(server, monkeypatch):
    """Once started, the server answers everything (traversal attempts included) without
    opening a single file."""
    for path, body in (("/api/inspect", {"text": "warm up"}), ("/api/generate", {})):
        request(server, "POST", path, body)
    opened = []
    real_open = open

    def watch(*a, **kw):
        opened.append(a[0] if a else kw)
        return real_open(*a, **kw)

    monkeypatch.setattr("builtins.open", watch)
    monkeypatch.setattr("io.open", watch)
    for method, path, body in [("GET", "/", None), ("GET", "/api/model", None),
                               ("POST", "/api/inspect", {"text": "It was ../../etc/passwd"}),
                               ("POST", "/api/generate", {"prime": "/etc/passwd", "length": 50}),
                               ("GET", "/../../../../etc/passwd", None),
                               ("GET", "/%2e%2e/%2e%2e/etc/passwd", None),
                               ("GET", "//etc/passwd", None),
                               ("GET", "/web/playground.html", None),
                               ("GET", "/api/model/../../pyproject.toml", None)]:
        status, _, answer = request(server, method, path, body)
        assert status in (200, 404), (path, status)
        assert b"root:" not in answer and b"[project]" not in answer
    assert opened == []


# ---------------------------------------------------------------------------- load, streaming


def test_eight_clients_at_once(server, ckpt):
    results, errors = {}, []

    def client(i):
        try:
            kw = dict(prime="It was", length=150, seed=i)
            for _ in range(3):
                status, _, body = request(server, "POST", "/api/generate", kw)
                assert status == 200
                results.setdefault(i, set()).add(body.decode())
                status, _, body = request(server, "GET", "/api/model")
                assert status == 200
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for i in range(8):  # no request saw another's state
        assert results[i] == {expected_text(ckpt, prime="It was", length=150, seed=i)}


def test_characters_arrive_while_the_rest_is_generated(server, ckpt, monkeypatch):
    """The generator is held after 20 characters until the client has seen them: the stream
    is flushed as it is generated, not at the end."""
    go = threading.Event()
    real = serve.generate

    def held(*a, **kw):
        for n, ch in enumerate(real(*a, **kw)):
            if n == 20:
                assert go.wait(20), "the client never saw the first characters"
            yield ch

    monkeypatch.setattr(server.RequestHandlerClass.playground, "generate", held)
    monkeypatch.setattr(serve, "FLUSH_EVERY", 0.0)
    kw = dict(prime="It was", length=400, seed=7)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    conn.request("POST", "/api/generate", json.dumps(kw), {"Content-Type": "application/json"})
    res = conn.getresponse()
    seen = b""
    while len(seen) < 20:
        chunk = res.read1(4096)
        assert chunk, "the stream ended early"
        seen += chunk
    assert not go.is_set() and len(seen) == 20  # these came before the rest was generated
    go.set()
    seen += res.read()
    conn.close()
    assert seen.decode() == expected_text(ckpt, **kw)


def test_a_client_leaving_mid_stream_is_quietly_let_go(server, capsys, monkeypatch):
    """The client resets the connection while the generator is held; once it goes on, the
    server's next write fails, and the request ends there, quietly."""
    go, yielded = threading.Event(), []
    real = serve.generate

    def held(*a, **kw):
        for n, ch in enumerate(real(*a, **kw)):
            if n == 20:
                go.wait(20)
            yielded.append(ch)
            yield ch

    monkeypatch.setattr(server.RequestHandlerClass.playground, "generate", held)
    monkeypatch.setattr(serve, "FLUSH_EVERY", 0.0)
    body = json.dumps({"length": serve.MAX_LENGTH}).encode()
    with socket.create_connection(server.server_address[:2], timeout=10) as s:
        s.sendall(b"POST /api/generate HTTP/1.0\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert s.recv(100).startswith(b"HTTP/1.0 200")
        # close with a reset, as a killed browser tab does
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    go.set()
    t0 = time.perf_counter()
    while len(yielded) < serve.MAX_LENGTH and time.perf_counter() - t0 < 2:
        time.sleep(0.05)
    assert len(yielded) < serve.MAX_LENGTH  # it stopped generating for nobody
    assert_alive(server)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------- the command


def _serve_process(run_dir, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "scratchrnn", "serve", str(run_dir),
                             "--port", "0", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert m, (line, proc.poll())
    return proc, int(m.group(1))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_the_command_cleanly(run_dir, sig):
    proc, port = _serve_process(run_dir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/model")
        assert conn.getresponse().status == 200
        conn.close()
        # a stream in flight does not hold the stop up
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/generate", json.dumps({"length": serve.MAX_LENGTH}),
                     {"Content-Type": "application/json"})
        conn.getresponse().read1(10)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err and "stopped" in out


def test_a_port_in_use_is_one_clean_line(run_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        rc = main(["serve", str(run_dir), "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and err.startswith("scratchrnn: error: cannot listen")


def test_make_server_takes_a_checkpoint_object_and_binds_loopback(ckpt):
    srv = serve.make_server(ckpt, port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
        assert serve.url(srv).startswith("http://127.0.0.1:")
    finally:
        srv.server_close()


def test_ipv6_loopback(ckpt):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        srv = serve.make_server(ckpt, "::1", 0)
    except sr.ScratchRNNError as e:
        pytest.skip(f"::1 is not available here: {e}")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert serve.url(srv).startswith("http://[::1]:")
        assert_alive(srv)  # http.client sends Host: [::1]:PORT, which the Host check allows
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "127.255.255.254", "localhost",
                                  "0x7f.1", "2130706433", "::1"])
def test_every_loopback_spelling_counts_as_loopback(ckpt, host, monkeypatch, capsys):
    """Decided by the address bound: no warning that other machines can reach it, and the
    Host check (the DNS-rebinding defence) stays on."""
    try:
        srv = serve.make_server(ckpt, host, 0)
    except sr.ScratchRNNError as e:
        pytest.skip(f"{host} is not available here: {e}")
    try:
        assert srv.loopback
    finally:
        srv.server_close()

    def stop(self, poll_interval=0.5):
        raise KeyboardInterrupt

    monkeypatch.setattr(serve.PlaygroundServer, "serve_forever", stop)
    assert serve.run(ckpt, host, 0, log=lambda *a: None) == 0
    assert capsys.readouterr().err == ""


def test_a_server_other_machines_reach_warns(ckpt, monkeypatch, capsys):
    # Never bound to a public address in a test: the address check is what is replaced.
    monkeypatch.setattr("scratchrnn.serve.connections.is_loopback_address", lambda address: False)
    monkeypatch.setattr(serve.PlaygroundServer, "serve_forever",
                        lambda self, poll_interval=0.5: (_ for _ in ()).throw(KeyboardInterrupt))
    assert serve.run(ckpt, "127.0.0.1", 0, log=lambda *a: None) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other machines can reach the playground" in err
