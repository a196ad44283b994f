"""What a playground request may ask (`serve.py`): its request line and headers read strictly,
every field of its JSON body checked as `scratchrnn sample` checks its flags, each refusal a
`BadRequest` that becomes a 4xx and one line of JSON; and which addresses are this machine."""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import math
import re
import socket

from ..data.text import to_ascii
from ..errors import ScratchRNNError, spelled
from ..limits import MAX_BEAM, MAX_BODY, MAX_LENGTH, MAX_PROMPT, MAX_SAMPLES, MAX_SEED
from ..sampling.options import check_options, check_samples
from ..sampling.sampler import check_clamp, check_sampling

GENERATE_DEFAULTS = dict(prime="", length=200, temperature=0.8, top_k=None, top_p=None,
                         argmax=False, seed=0, clamp=None, stop_at=None, beam=None,
                         num_samples=None)


SURROGATE = re.compile("[\ud800-\udfff]")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


FIELD = {"argmax": '"argmax": true'}  # a parameter as the API's JSON says it, if not its name


def api_words(message: str) -> str:
    return spelled(message, FIELD.get)


def only_fields(body: dict, allowed) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; the fields are {', '.join(allowed)}")


def parse_json(raw: bytes) -> dict:
    """A request's body: one JSON object, strictly (no NaN, no key given twice: a proxy that
    checks the first of two and this server that takes the last would disagree)."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadRequest(f"the body is not valid JSON ({' '.join(str(e).split())[:120]})") \
            from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _unique_keys(pairs: list) -> dict:
    body = dict(pairs)
    if len(body) < len(pairs):
        seen = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise BadRequest(f"the field {twice[:40]!r} appears twice; send each field once")
    return body


def text_field(body: dict, key: str, default: str | None = None, clean=to_ascii) -> str:
    """`clean`: the model's cleaning (`vocab.clean`), under which the length is counted too."""
    value = body.get(key, default)
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    if SURROGATE.search(value):  # JSON's \ud800 escapes can say what no UTF-8 text holds
        raise BadRequest(f"{key} holds a lone UTF-16 surrogate (\\ud800 to \\udfff), which is "
                         "not a character; send valid Unicode")
    # Counted after cleaning too: transliteration can make one character many (U+FDFD is 18),
    # but only a model of ASCII transliterates: one of Cyrillic reads "щ" as one, not "shch".
    n = max(len(value), len(clean(value)) if len(value) <= MAX_PROMPT else 0)
    if n > MAX_PROMPT:
        raise BadRequest(f"{key} has {n:,} characters once cleaned; the most is {MAX_PROMPT:,}")
    return value


def _int(body: dict, key: str, lo: int, hi: int, optional: bool = False) -> int | None:
    value = body.get(key, GENERATE_DEFAULTS.get(key))
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"{key} must be a whole number in [{lo}, {hi}]"
                         f"{' or null' if optional else ''}, got {value!r}")
    return value


def _number(body: dict, key: str, optional: bool = False) -> float | None:
    value = body.get(key, GENERATE_DEFAULTS.get(key))
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{key} must be a finite number{' or null' if optional else ''}, "
                         f"got {value!r}")
    return float(value)


def parse_generate(body: dict, model, clean=to_ascii) -> dict:
    """The keyword arguments of `sample.generate` from a request, every field checked, and
    `num_samples`. A request does at most MAX_LENGTH model steps: `length` times
    `num_samples` or `beam`."""
    only_fields(body, GENERATE_DEFAULTS)
    beam = _int(body, "beam", 1, MAX_BEAM, optional=True)
    args = dict(prime=text_field(body, "prime", "", clean),
                length=_int(body, "length", 1, MAX_LENGTH),
                # beam search takes none: the 0.8 of a draw is no default for it
                temperature=None if beam is not None and "temperature" not in body
                else _number(body, "temperature", optional=beam is not None),
                top_k=_int(body, "top_k", 1, 10**6, optional=True),
                top_p=_number(body, "top_p", optional=True),
                seed=_int(body, "seed", 0, MAX_SEED, optional=True),
                stop_at=None if body.get("stop_at") is None else text_field(body, "stop_at"),
                beam=beam, num_samples=_int(body, "num_samples", 1, MAX_SAMPLES, optional=True))
    argmax = body.get("argmax", False)
    if not isinstance(argmax, bool):
        raise BadRequest(f"argmax must be true or false, got {argmax!r}")
    clamp = body.get("clamp")
    if clamp is not None:
        if not isinstance(clamp, dict):
            raise BadRequest("clamp must be null or {\"layer\": L, \"unit\": U, \"value\": V}")
        only_fields(clamp, ("layer", "unit", "value"))
        if len(clamp) != 3:
            raise BadRequest("clamp needs layer, unit and value")
        clamp = (clamp["layer"], clamp["unit"], clamp["value"])
    try:
        check_options(args["length"], args["temperature"], args["top_k"], args["top_p"], argmax,
                      args["stop_at"], beam, most=MAX_LENGTH)
        check_samples(args["num_samples"], args["length"], beam, most=MAX_LENGTH)
        if args["temperature"] is not None:
            check_sampling(args["temperature"], args["top_k"], args["top_p"])
        clamp = check_clamp(clamp, model)
    except ScratchRNNError as e:
        raise BadRequest(api_words(str(e))) from None
    return dict(args, argmax=argmax, clamp=clamp)


# The request line and header lines as RFC 9112 has them, and nothing looser: whatever two
# parsers could read two ways (a space before a colon, a folded line, a bare CR that Python's
# email parser would split into a second, hidden header, two spaces in the request line) is
# refused instead of guessed at, so that no proxy in front and this server can disagree on
# where a request ends (smuggling).
TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
REQUEST_LINE = re.compile(b"(" + TOKEN + rb") (\S+) HTTP/([0-9])\.([0-9])\r?\n")
HEADER_LINE = re.compile(TOKEN + rb":[^\x00-\x08\x0a-\x1f\x7f]*\r?\n")
TARGET = re.compile(rb"/[\x21-\x7e]*")  # origin form only: a path of visible ASCII
MAX_REQUEST_LINE = 65536  # bytes of the request line (http.server's bound; more: 414)
MAX_HEADER_LINE = 8190  # bytes of one header line (Apache's bound; more: 431)
MAX_HEADERS = 100  # header lines per request (http.client's bound; more: 431)
IPV4_LITERAL = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}", re.I)


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """(method, target, version) of a request line. Refused at once, before any header is
    waited for: an HTTP/0.9 client (`GET /`) sends none and would hold the thread."""
    m = REQUEST_LINE.fullmatch(line)
    if not m:
        if len(line.split()) == 2:
            raise BadRequest("HTTP/0.9 requests are not served; send the version too, as in "
                             "`GET / HTTP/1.1`")
        raise BadRequest(f"malformed request line {line[:60]!r}; send `METHOD /path HTTP/1.1`")
    method, target, major, minor = m.groups()
    if major != b"1":
        raise BadRequest(f"HTTP/{major.decode()}.{minor.decode()} is not served; send "
                         "HTTP/1.1 or HTTP/1.0", 505)
    if not TARGET.fullmatch(target):
        raise BadRequest(f"the request target {target[:60]!r} is not a path such as "
                         "/api/model (visible ASCII, starting with /)")
    return method.decode("ascii"), target.decode("ascii"), f"HTTP/1.{minor.decode()}"


def read_headers(rfile, method: str) -> tuple[http.client.HTTPMessage, int | None]:
    """The headers that follow a request line, each line checked as it is read, and the
    body's length in bytes (None: no Content-Length)."""
    lines = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        if len(line) > MAX_HEADER_LINE:
            raise BadRequest(f"a header line is longer than {MAX_HEADER_LINE:,} bytes", 431)
        if line in (b"\r\n", b"\n"):
            break
        if not line.endswith(b"\n"):
            raise BadRequest("the request ended inside its headers; end them with an empty line")
        if len(lines) == MAX_HEADERS:
            raise BadRequest(f"more than {MAX_HEADERS} header lines", 431)
        if not HEADER_LINE.fullmatch(line):
            raise BadRequest(f"malformed header line {line[:60]!r}; each header is one line "
                             "`Name: value` without control characters")
        lines.append(line)
    headers = http.client.parse_headers(io.BytesIO(b"".join(lines) + b"\r\n"))
    return headers, request_length(method, headers)


def request_length(method: str, headers) -> int | None:
    """The body's length from checked framing headers (None: no Content-Length)."""
    if len(headers.get_all("Host") or []) > 1:
        raise BadRequest("more than one Host header")
    lengths = headers.get_all("Content-Length") or []
    if "Transfer-Encoding" in headers:
        if lengths:
            raise BadRequest("Transfer-Encoding and Content-Length together; send only a "
                             "Content-Length")
        raise BadRequest("Transfer-Encoding is not accepted; send the body with a "
                         "Content-Length", 411)
    if not lengths:
        return None
    if len(lengths) > 1:  # RFC 9112 lets equal ones through; refusing all is simpler and safe
        raise BadRequest("more than one Content-Length header; send exactly one")
    value = lengths[0].strip(" \t")
    if not re.fullmatch(r"[0-9]+", value, re.ASCII):
        raise BadRequest(f"Content-Length must be a whole number of bytes, got {value[:40]!r}")
    if len(value.lstrip("0")) > 9 or int(value) > MAX_BODY:  # no int() of a 60,000-digit text
        raise BadRequest(f"the request body has {value[:20]}{'...' if len(value) > 20 else ''} "
                         f"bytes; the most is {MAX_BODY:,}", 413)
    if method == "GET" and int(value):
        raise BadRequest("a GET request has no body; send it without one")
    return int(value)


def is_loopback_address(address: str) -> bool:
    """Whether an address the server is bound to (or a client comes from) is this machine."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def is_loopback_name(host: str) -> bool:
    """Whether a Host header's name is this machine: "localhost" or a literal loopback address
    in any spelling a browser or curl sends (127.1, 0x7f.1, 2130706433, [::1]). Never looked up
    in DNS: a name that resolves to 127.0.0.1 is exactly what a DNS-rebinding page sends."""
    name = host_of(host).lower()
    name = name[:-1] if name.endswith(".") else name
    if name == "localhost":
        return True
    if IPV4_LITERAL.fullmatch(name):  # inet_aton alone would accept "127.0.0.1 trailing"
        try:
            return is_loopback_address(socket.inet_ntoa(socket.inet_aton(name)))
        except OSError:
            return False
    return ":" in name and is_loopback_address(name)


def client_key(address: str) -> str:
    """What counts as one client for the per-client cap: its IPv4 address, or the /64 network
    of its IPv6 one (one machine is given a whole /64 to pick addresses from)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    ip = getattr(ip, "ipv4_mapped", None) or ip
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def host_of(host: str) -> str:
    """The name in a Host header: "[::1]:8000" -> "::1", "localhost:8000" -> "localhost"."""
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
