"""The server's connections: each read against the clock of the request in flight,
each write against a budget, and admission capped in all and per client address,
so that slow or crowding clients cannot lock the others out."""

from __future__ import annotations

import io
import math
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from ..safejson import dumps as json_dumps
from .requests import client_key, is_loopback_address

MAX_CONNECTIONS = 64  # connections served at once; more get a 503
MAX_PER_CLIENT = 16  # of those from one address (a browser opens 6), so one can't take them all
REQUEST_TIME = 10.0  # seconds for a whole request to arrive, however its bytes trickle in
WRITE_TIME = 30.0  # seconds a response may wait, all told, on a client that does not read


class Connection(io.RawIOBase):
    """A client's socket, read against the clock of the request in flight and written against
    a budget of time spent waiting on the client: a per-read timeout alone lets a client that
    sends (or reads) one byte every few seconds hold its thread for as long as it likes."""

    def __init__(self, sock: socket.socket, write_time: float):
        self.sock, self.deadline, self.write_left, self.received = sock, math.inf, write_time, 0

    def readable(self):
        return True

    def writable(self):
        return True

    def readinto(self, buf) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.sock.settimeout(left)
        n = self.sock.recv_into(buf)
        self.received += n
        return n

    def write(self, data) -> int:
        if self.write_left <= 0:
            raise TimeoutError("the client stopped reading")
        self.sock.settimeout(self.write_left)
        t0 = time.monotonic()
        try:
            self.sock.sendall(data)
        finally:
            self.write_left -= time.monotonic() - t0
        return len(data)


class PlaygroundServer(ThreadingHTTPServer):
    daemon_threads = True  # a stream in flight does not hold up Ctrl-C
    # socketserver's default backlog of 5 reset connections under 20 clients (bench_serve.py)
    request_queue_size = 128
    def __init__(self, address, handler, *, request_time: float = REQUEST_TIME,
                 write_time: float = WRITE_TIME, max_connections: int = MAX_CONNECTIONS,
                 max_per_client: int = MAX_PER_CLIENT):
        # One thread per connection, so connections are capped, in all and per client address:
        # past a cap a connection gets a one-line 503 at once instead of a thread of its own.
        self.lock, self.active, self.clients = threading.Lock(), 0, {}
        self.stopping = threading.Event()  # streams in flight end at their next batch
        self.request_time, self.write_time = request_time, write_time
        self.max_connections, self.max_per_client = max_connections, max_per_client
        super().__init__(address, handler)  # binds
        # Whether only this machine can reach the server: decided by the address bound, not
        # by how --host spelled it (127.1, 0x7f.1, localhost).
        self.loopback = is_loopback_address(self.server_address[0])

    def _admit(self, client: str) -> str | None:
        """None when `client` may have a thread for one more connection, else why not."""
        with self.lock:
            if self.active >= self.max_connections:
                return "too many connections; try again in a moment"
            if self.clients.get(client, 0) >= self.max_per_client:
                return (f"too many connections from {client} ({self.max_per_client} at most); "
                        "close some and try again")
            self.active += 1
            self.clients[client] = self.clients.get(client, 0) + 1
        return None

    def drain(self, timeout: float) -> None:
        """Ask the streams in flight to end and wait up to `timeout` s for every connection's
        thread to finish: a daemon thread still running while the interpreter exits can print
        a traceback from its finalization."""
        self.stopping.set()
        end = time.monotonic() + timeout
        while self.active and time.monotonic() < end:
            time.sleep(0.01)

    def _leave(self, client: str) -> None:
        with self.lock:
            self.active -= 1
            self.clients[client] -= 1
            if not self.clients[client]:
                del self.clients[client]

    def process_request(self, request, client_address):
        client = client_key(client_address[0])
        refusal = self._admit(client)
        if refusal is None:
            try:
                return super().process_request(request, client_address)
            except BaseException:  # no thread started: its slot is free again
                self._leave(client)
                raise
        body = json_dumps({"error": refusal})
        try:  # a few bytes into an empty send buffer: this never blocks the accepting thread
            request.sendall(f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: "
                            f"application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                            f"{body}".encode())
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._leave(client_key(client_address[0]))

    def handle_error(self, request, client_address):
        """Whatever escapes a handler (a reset while the request line is read): one line, not
        socketserver's traceback."""
        e = sys.exc_info()[1]
        if not isinstance(e, ConnectionError | TimeoutError):
            print(f"scratchrnn serve: {client_address[0]}: {type(e).__name__}: "
                  f"{' '.join(str(e).split())}", file=sys.stderr, flush=True)
