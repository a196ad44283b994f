"""What a playground request may ask (`serve.py`): every field of its JSON body checked as
`scratchrnn sample` checks its flags, each refusal a `BadRequest` that becomes a 4xx and one
line of JSON."""

from __future__ import annotations

import math

from .errors import ScratchRNNError
from .sample import check_clamp, check_sampling
from .text import to_ascii

MAX_BODY = 64 * 1024  # bytes of a request body
MAX_PROMPT = 4000  # characters of a prompt or an inspected text
MAX_LENGTH = 5000  # characters generated per request
MAX_SEED = 2**63 - 1
GENERATE_DEFAULTS = dict(prime="", length=200, temperature=0.8, top_k=None, top_p=None,
                         argmax=False, seed=0, clamp=None)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _api_words(message: str) -> str:
    """sample.check_sampling speaks in command-line flags; the API's fields are named so."""
    for flag, key in (("--temperature", "temperature"), ("--top-k", "top_k"),
                      ("--top-p", "top_p"), ("--argmax", '"argmax": true'),
                      ("--length", "length")):
        message = message.replace(flag, key)
    return message


def _only(body: dict, allowed) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; the fields are {', '.join(allowed)}")


def _text(body: dict, key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    # Counted after cleaning too: transliteration can make one character many (U+FDFD is 18).
    n = max(len(value), len(to_ascii(value)) if len(value) <= MAX_PROMPT else 0)
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


def parse_generate(body: dict, model) -> dict:
    """The keyword arguments of `sample.generate` from a request, every field checked."""
    _only(body, GENERATE_DEFAULTS)
    args = dict(prime=_text(body, "prime", ""), length=_int(body, "length", 1, MAX_LENGTH),
                temperature=_number(body, "temperature"),
                top_k=_int(body, "top_k", 1, 10**6, optional=True),
                top_p=_number(body, "top_p", optional=True),
                seed=_int(body, "seed", 0, MAX_SEED, optional=True))
    argmax = body.get("argmax", False)
    if not isinstance(argmax, bool):
        raise BadRequest(f"argmax must be true or false, got {argmax!r}")
    clamp = body.get("clamp")
    if clamp is not None:
        if not isinstance(clamp, dict):
            raise BadRequest("clamp must be null or {\"layer\": L, \"unit\": U, \"value\": V}")
        _only(clamp, ("layer", "unit", "value"))
        if len(clamp) != 3:
            raise BadRequest("clamp needs layer, unit and value")
        clamp = (clamp["layer"], clamp["unit"], clamp["value"])
    try:
        check_sampling(args["temperature"], args["top_k"], args["top_p"])
        clamp = check_clamp(clamp, model)
    except ScratchRNNError as e:
        raise BadRequest(_api_words(str(e))) from None
    return dict(args, argmax=argmax, clamp=clamp)


def _hostname(host: str) -> str:
    """The name in a Host header: "[::1]:8000" -> "::1", "localhost:8000" -> "localhost"."""
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
