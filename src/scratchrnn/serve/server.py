"""The playground: `scratchrnn serve RUN` serves one self-contained page and a small JSON API on
127.0.0.1, to look inside a trained model while typing and to generate, streamed, with a unit
clamped (Radford, Jozefowicz & Sutskever 2017, "Learning to Generate Reviews and Discovering
Sentiment", steered text by fixing one unit's value).

    GET  /               the page (inline CSS and JS; nothing from a network)
    GET  /api/model      the model card
    POST /api/inspect    {"text"} -> the activation view's data (`inside.inspect(...).to_dict()`,
                         which the page draws with visualize's renderer)
    POST /api/generate   {"prime", "length", "temperature", "top_k", "top_p", "argmax", "seed",
                          "clamp": {"layer", "unit", "value"} | null, "stop_at", "beam"}
                         -> text/plain, streamed; with "num_samples": N -> {"samples": [N
                         texts]}, sample i drawn with seed + i (JSON, when all are made)

Standard library only (`http.server.ThreadingHTTPServer`): a local, single-user tool needs no
new dependency, and a thread per request serves several clients (BENCHMARKS.md has the load
figures). The model is read-only; every request builds its own state. No request names a file:
the page is read from the package once, at start. Every input is checked; a bad request gets a
4xx and one line of JSON, an unexpected failure a 500 and one line on stderr, never a traceback
or a dead server. A client cannot hold a thread past the bounds below (a whole request's time,
a response's time blocked on a client that does not read) nor take more than its address's
share of the threads, so that a hostile client does not lock the others out.
"""

from __future__ import annotations

import io
import math
import re
import secrets
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ..errors import ScratchRNNError
from ..inside.inspection import inspect
from ..inside.page import renderer_css, renderer_js
from ..limits import MAX_BEAM, MAX_SAMPLES, MAX_STOP
from ..safejson import dumps as json_dumps
from ..sampling.options import seeds
from ..sampling.sampler import generate, shared_stepper
from ..store.checkpoint import Checkpoint, load_checkpoint
from .connections import (
    MAX_CONNECTIONS,
    MAX_PER_CLIENT,
    REQUEST_TIME,
    WRITE_TIME,
    Connection,
    PlaygroundServer,
)
from .requests import (
    MAX_BODY,
    MAX_LENGTH,
    MAX_PROMPT,
    MAX_REQUEST_LINE,
    BadRequest,
    api_words,
    host_of,
    is_loopback_name,
    only_fields,
    parse_generate,
    parse_json,
    parse_request_line,
    read_headers,
    text_field,
)

MAX_INSPECTIONS = 4  # computed at once; more requests wait their turn
FLUSH_EVERY = 0.03  # seconds between writes of a streamed generation (the first goes at once)
# The page's only sources are itself: it cannot load or send anything anywhere else, and only
# its own two scripts (this response's nonce) run.
CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
       "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def _finite(x):
    """A number JSON.parse can read (NaN and infinities are not JSON), else None."""
    return x if isinstance(x, int | float) and math.isfinite(x) else None


def model_card(ckpt: Checkpoint) -> dict:
    """The facts the page shows, as JSON values (visualize.model_card has them as text)."""
    cfg, meta = ckpt.model.config, ckpt.meta
    vals = [r["val_loss"] for r in meta.get("history", []) if r.get("val_loss") is not None]
    return {"cell": cfg.cell, "layers": cfg.num_layers, "hidden": cfg.hidden_size,
            "parameters": int(ckpt.model.num_params()), "vocab": ckpt.vocab.chars,
            "vocab_size": len(ckpt.vocab), "dtype": cfg.dtype, "step": _finite(meta.get("step")),
            "val_loss": _finite(vals[-1]) if vals else None,
            "best_val": _finite(meta.get("best_val")),
            "training_seconds": _finite(meta.get("elapsed_s")),
            "checkpoint": ckpt.path.parent.name if ckpt.path else None,
            "limits": {"prompt": MAX_PROMPT, "length": MAX_LENGTH, "body": MAX_BODY,
                       "stop_at": MAX_STOP, "beam": MAX_BEAM, "num_samples": MAX_SAMPLES}}


class Handler(BaseHTTPRequestHandler):
    server_version = "scratchrnn"
    # What a refusal of an unparsable request line is answered in (http.server's default,
    # HTTP/0.9, would send the JSON error without a status line).
    default_request_version = "HTTP/1.0"
    playground: Playground  # set on the subclass make_server builds
    server: PlaygroundServer

    def setup(self):
        self.connection = self.request
        self.conn = Connection(self.request, self.server.write_time)
        self.rfile, self.wfile = io.BufferedReader(self.conn), self.conn

    def handle_one_request(self):
        """http.server's, with the request's time bounded and its framing checked whole."""
        self.conn.deadline = time.monotonic() + self.server.request_time
        self.command, self.path, self.requestline, self.close_connection = None, "", "", True
        self.request_version = self.default_request_version
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except TimeoutError:
            if self.conn.received:  # one that sent nothing (a browser's preconnect) just closes
                self.send_error(408, f"the request line took over {self.server.request_time:g} "
                                "s to arrive")
            return
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.send_error(414, f"the request line is over {MAX_REQUEST_LINE:,} bytes")
        elif self.raw_requestline and self.parse_request():
            handler = getattr(self, f"do_{self.command}", None)
            if handler is None:
                self.send_error(405, f"{self.command[:20]!r} is not a method the playground "
                                "takes; it takes GET and POST")
            else:
                handler()

    def parse_request(self) -> bool:
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        try:
            self.command, self.path, self.request_version = \
                parse_request_line(self.raw_requestline)
            self.headers, self.length = read_headers(self.rfile, self.command)
        except BadRequest as e:
            self.send_error(e.status, str(e))
            return False
        except TimeoutError:
            self.send_error(408, f"the headers took over {self.server.request_time:g} s to "
                            "arrive; send the whole request at once")
            return False
        return True

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # one line per failed request instead (_fail), not one per request

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": ctype, "Content-Length": str(len(body)),
                   "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                   "Referrer-Policy": "no-referrer", **(extra or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj, extra: dict | None = None) -> None:
        self._send(status, json_dumps(obj).encode(), "application/json", extra)

    def _fail(self, status: int, message: str, extra: dict | None = None) -> None:
        line = " ".join(str(message).split())  # one line, whatever the message held
        print(f"scratchrnn serve: {self.command or '-'} {self.path[:80]!r} -> "
              f"{status}: {line}",
              file=sys.stderr, flush=True)
        self._json(status, {"error": line}, extra)

    def _route(self, method: str):
        routes = {"/": ("GET", self._page), "/api/model": ("GET", self._model),
                  "/api/inspect": ("POST", self._inspect),
                  "/api/generate": ("POST", self._generate)}
        if self.path not in routes:
            raise BadRequest(f"no such page {self.path[:80]!r}; the playground is at /", 404)
        allowed, handler = routes[self.path]
        if method != allowed:
            raise BadRequest(f"{self.path} takes {allowed}, not {method}", 405)
        return handler

    def _handle(self, method: str) -> None:
        try:
            host = self.headers.get("Host")  # browsers always send it; HTTP/1.0 tools may not
            if self.server.loopback and host is not None and not is_loopback_name(host):
                # A page elsewhere whose name now points at 127.0.0.1 (DNS rebinding) gets nothing.
                raise BadRequest(f"unexpected Host {host_of(host)[:80]!r}", 403)
            self._route(method)()
        except BadRequest as e:
            extra = {"Allow": "GET" if self.path in ("/", "/api/model") else "POST"} \
                if e.status == 405 else None
            self._fail(e.status, str(e), extra)
        except ScratchRNNError as e:
            self._fail(400, api_words(str(e)))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away; nothing to answer
        except Exception as e:  # never a traceback, never a dead server
            print(f"scratchrnn serve: {self.command} {self.path[:80]!r}: internal error: "
                  f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
            try:
                self._json(500, {"error": f"internal error ({type(e).__name__}); see the "
                                          "server's log"})
            except OSError:
                pass

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line, an unknown method, headers
        too long) answer in the API's one-line JSON too."""
        code = 405 if code == 501 else code  # an unknown method is a method not allowed
        self.close_connection = True
        try:
            self._fail(code, message or explain or "bad request")
        except OSError:
            pass

    def do_GET(self):  # and the other methods http.server dispatches to do_<METHOD>
        self._handle(self.command)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _body(self) -> dict:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":  # also keeps other sites' plain form posts out
            raise BadRequest("send the request body as Content-Type: application/json", 415)
        if self.length is None:  # sizes and framing were checked with the headers
            raise BadRequest("a request body needs a Content-Length", 411)
        try:
            raw = self.rfile.read(self.length)
        except TimeoutError:
            raise BadRequest(f"the body took over {self.server.request_time:g} s to arrive; "
                             "send the whole request at once", 408) from None
        if len(raw) < self.length:
            raise BadRequest(f"the body ended after {len(raw):,} of its {self.length:,} bytes "
                             "(Content-Length)")
        return parse_json(raw)

    def _page(self) -> None:
        nonce = secrets.token_urlsafe(16)
        page = self.playground.page.replace(b"{{NONCE}}", nonce.encode())
        self._send(200, page, "text/html; charset=utf-8",
                   {"Content-Security-Policy": CSP.format(nonce=nonce), "X-Frame-Options": "DENY"})

    def _model(self) -> None:
        self._json(200, self.playground.card)

    def _inspect(self) -> None:
        body = self._body()
        only_fields(body, ("text",))
        text = text_field(body, "text", clean=self.playground.ckpt.vocab.clean)
        if not text:
            raise BadRequest("text is empty; type something to look at")
        pg = self.playground
        with pg.inspecting:
            data = inspect(pg.ckpt.model, pg.ckpt.vocab, text).to_dict()
        self._json(200, data)

    def _generate(self) -> None:
        pg = self.playground
        args = parse_generate(self._body(), pg.ckpt.model, pg.ckpt.vocab.clean)
        n = args.pop("num_samples")
        if n is not None:
            steps = shared_stepper(pg.ckpt.model, args["clamp"])  # weights prepared once
            runs = [pg.generate(pg.ckpt.model, pg.ckpt.vocab, **dict(args, seed=s, steps=steps))
                    for s in seeds(args["seed"], n)]  # every one checked before any is made
            self._json(200, {"samples": ["".join(chars) for chars in runs]})
            return
        chars = pg.generate(pg.ckpt.model, pg.ckpt.vocab, **args)
        first = next(chars, "")  # checks the prompt before the answer starts
        self.send_response(200)
        for k, v in {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff"}.items():
            self.send_header(k, v)
        self.end_headers()  # HTTP/1.0: the body runs until the connection closes
        self.wfile.write(first.encode())
        pending, last = [], time.perf_counter()
        for ch in chars:  # written in batches: one send per character costs more than it shows
            if self.server.stopping.is_set():
                return  # the server is stopping: the stream ends here
            pending.append(ch)
            now = time.perf_counter()
            if now - last >= FLUSH_EVERY:
                self.wfile.write("".join(pending).encode())
                pending, last = [], now
        self.wfile.write("".join(pending).encode())


class Playground:
    """What every request reads: the checkpoint, its card and the page (read once, here)."""

    def __init__(self, ckpt: Checkpoint):
        self.ckpt = ckpt
        self.card = model_card(ckpt)
        # The activation view is visualize's renderer, inlined: one page, one copy of the view.
        parts = {"CSS": renderer_css(), "JS": renderer_js(), "NONCE": "{{NONCE}}"}
        web = resources.files("scratchrnn.inside") / "web"
        template = (web / "playground.html").read_text("utf-8")
        self.page = re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], template).encode()
        self.generate = generate  # tests slow it down to watch the stream
        # An inspection holds every signal of every layer for the whole text (about 32 MB at
        # 4,000 characters of the default model): a few at a time bound the memory.
        self.inspecting = threading.BoundedSemaphore(MAX_INSPECTIONS)


def make_server(ckpt, host: str = "127.0.0.1", port: int = 8000, *,
                request_time: float = REQUEST_TIME, write_time: float = WRITE_TIME,
                max_connections: int = MAX_CONNECTIONS,
                max_per_client: int = MAX_PER_CLIENT) -> PlaygroundServer:
    """A server for `ckpt` (a Checkpoint, run folder or .npz) on host:port (0: any free port),
    not yet serving: call `serve_forever()` (in a thread, for tests) and `shutdown()`. The
    keyword arguments are the bounds on hostile clients (the module constants of those names)."""
    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ScratchRNNError(f"`port` must be in [0, 65535], got {port!r}")
    playground = Playground(ckpt)
    handler = type("PlaygroundHandler", (Handler,), {"playground": playground})
    server_class = PlaygroundServer
    if ":" in host:  # an IPv6 address such as ::1
        server_class = type("PlaygroundServer6", (PlaygroundServer,),
                            {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), handler, request_time=request_time,
                              write_time=write_time, max_connections=max_connections,
                              max_per_client=max_per_client)
    except OSError as e:
        raise ScratchRNNError(f"cannot listen on {host}:{port} ({e.strerror or e}); pick "
                              "another `port` or `host`") from None
    return server


def url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def run(ckpt, host: str = "127.0.0.1", port: int = 8000, log=print) -> int:
    """Serve until Ctrl-C (or SIGTERM); returns the exit status, 0."""
    server = make_server(ckpt, host, port)
    if not server.loopback:
        print(f"scratchrnn: warning: listening on {host}, so other machines can reach the "
              "playground; it is meant for 127.0.0.1", file=sys.stderr, flush=True)
    log(f"scratchrnn: playground at {url(server)} (Ctrl-C stops it)")
    sys.stdout.flush()
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        log("scratchrnn: stopped")
    finally:
        server.drain(2.0)
        server.server_close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return 0
