"""Mask secrets and personal data in plugin log output before it is stored or streamed.

As with structlog processors, masking is a pipeline of small pure functions, one per
kind of secret; a line that none of them could apply to is returned after one cheap
check. Structured values (a JSON log line, a record's fields) are masked by key, then
every string inside them goes through the same text pipeline.

What is masked:

- anything non-empty under a *sensitive key*, one with a word such as ``password``,
  ``secret``, ``token``, ``auth``, ``authorization``, ``cookie``, ``session``,
  ``credential(s)``, ``jwt``, ``signature`` or ``api``/``private``/``access``/... +
  ``key``. Keys are split into words (``sessionId``, ``X-Api-Key``, ``ACCESS_TOKEN``),
  so ``author``, ``tokenizer_name`` and ``key`` are not sensitive; nor is a key whose
  sensitive word is followed by a descriptive one (``token_count``, ``token_type``,
  ``secret_name``, ``auth_url``, ``password_file``), nor ``tokens``/``sessions``, which
  are counts (``max_tokens``). ``pwd`` is, so the shell's ``PWD`` is masked too.
- in text: ``Bearer``/``Basic`` credentials, JWTs, API keys with a known prefix
  (``sk-``, ``ghp_``, ``AKIA``, our ``pxp_``/``pxm_``/``pxs_`` ...), URL passwords, e-mail local
  parts, ``Authorization``/``Cookie`` header values, and the value of ``key=value``,
  ``key: value`` and ``"key": "value"`` pairs with a sensitive key. An unquoted value
  ends at whitespace or one of ``&,;()[]{}<>``; ``null``/``None`` are left visible.

Hex digests, UUIDs, paths and ordinary prose are left alone. Masking is idempotent and
never raises on a ``str``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

__all__ = [
    "MASK",
    "is_sensitive_key",
    "mask_known",
    "mask_known_value",
    "mask_line",
    "mask_text",
    "mask_value",
    "remember_secret_values",
]

MASK = "***"

# --- values known to be secret ---------------------------------------------------------

# Shorter values would mask ordinary words and numbers all over the output.
MIN_SECRET_CHARS = 4
_known_pattern: re.Pattern[str] | None = None
_known_values: frozenset[str] = frozenset()


def remember_secret_values(values: Iterable[str]) -> None:
    """Values known to be secret (a plugin's ``.dev.vars``): masked wherever they appear,
    whatever the patterns find, for the life of the process."""
    global _known_pattern, _known_values
    found = _known_values | {v for v in values if len(v) >= MIN_SECRET_CHARS}
    if found == _known_values:
        return
    _known_values = frozenset(found)
    longest_first = sorted(found, key=len, reverse=True)
    _known_pattern = re.compile("|".join(map(re.escape, longest_first)))


def mask_known(text: str) -> str:
    """``text`` with every remembered secret value masked (one regex pass; none: as is)."""
    return text if _known_pattern is None else _known_pattern.sub(MASK, text)


def mask_known_value(value: Any) -> Any:
    """A JSON-like value with every remembered secret masked in its strings and keys;
    returned as is (not copied) while no secret is known."""
    if _known_pattern is None:
        return value
    if isinstance(value, str):
        return mask_known(value)
    if isinstance(value, dict):
        return {mask_known_value(k): mask_known_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_known_value(v) for v in value]
    return value


# --- sensitive keys -------------------------------------------------------------------

_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SENSITIVE_WORDS = frozenset(
    {
        "password", "passwords", "passwd", "passphrase", "pwd",
        "secret", "secrets", "token", "jwt", "bearer", "signature",
        "auth", "authorization", "authentication",
        "cookie", "cookies", "session", "credential", "credentials",
        "apikey", "apikeys", "privatekey", "accesskey", "secretkey", "sessionid",
    }
)  # fmt: skip
# Run-together words: "accesstoken", "dbpassword", "clientsecret", "xsrftoken".
_SENSITIVE_ENDINGS = ("password", "passwd", "secret", "token", "cookie", "credential")
_SENSITIVE_PAIRS = frozenset(
    (word, key)
    for word in ("api", "private", "access", "client", "signing", "encryption", "master", "ssh")
    for key in ("key", "keys")
)
# Words that, after the sensitive one, make the key describe a secret, not hold it.
_DESCRIPTIVE_WORDS = frozenset(
    {
        "count", "counts", "type", "kind", "length", "size", "limit", "usage",
        "ttl", "timeout", "expiry", "expires", "expiration", "lifetime", "age",
        "url", "uri", "endpoint", "domain", "path", "file", "dir", "env",
        "name", "enabled", "required", "secure", "mode", "scheme", "method", "format",
        "provider", "scope", "scopes", "version", "algorithm",
    }
)  # fmt: skip
_LONGEST_CACHED_KEY = 128


@lru_cache(maxsize=4096)
def _cached_key_is_sensitive(key: str) -> bool:
    return _key_is_sensitive(key)


def _key_is_sensitive(key: str) -> bool:
    words = [word.lower() for word in _KEY_WORD.findall(key)]
    last_hit = -1
    for index, word in enumerate(words):
        if (
            word in _SENSITIVE_WORDS
            or word.endswith(_SENSITIVE_ENDINGS)
            or (index > 0 and (words[index - 1], word) in _SENSITIVE_PAIRS)
        ):
            last_hit = index
    if last_hit < 0:
        return False
    return not any(word in _DESCRIPTIVE_WORDS for word in words[last_hit + 1 :])


def is_sensitive_key(key: str) -> bool:
    """Whether a value stored under ``key`` is a secret (case-insensitive, word-wise)."""
    if len(key) > _LONGEST_CACHED_KEY:
        return _key_is_sensitive(key)
    return _cached_key_is_sensitive(key)


# --- free-text processors -------------------------------------------------------------
# Each processor is a pure ``str -> str`` function that only replaces secrets by MASK.
# Patterns start with a literal or a small character class wherever they can (boundary
# look-behinds come after it): sre then skips through the line in C instead of trying
# the pattern at every character.


def _mask_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Replace each (start, end) span, ordered by start, by MASK; spans that touch or
    overlap make one mask, and empty spans are skipped."""
    pieces: list[str] = []
    cursor = 0
    for start, end in spans:
        if start >= end:
            continue
        if pieces and start <= cursor:
            cursor = max(cursor, end)
            continue
        pieces += (text[cursor:start], MASK)
        cursor = end
    if not pieces:
        return text
    pieces.append(text[cursor:])
    return "".join(pieces)


_URL_PASSWORD = re.compile(r"://(?P<user>[^\s:/?#@\[\]]*):[^\s/?#]+@")


def _mask_url_passwords(text: str) -> str:
    """``https://user:pass@host`` keeps the user name and the host."""
    return _URL_PASSWORD.sub(lambda m: f"://{m['user']}:{MASK}@", text)


_SCHEMES = r"(?i:bearer|basic|token|negotiate|digest)"
# Anchored on the ":"; a one-token scheme keeps its name, anything else (Digest's list
# of fields, a cookie's pairs) is hidden to the end of the line.
_HEADER = re.compile(
    r":(?:(?<=(?i:authorization):)(?<![A-Za-z0-9_](?i:authorization):)"
    r"|(?<=(?i:cookie):)(?<![A-Za-z0-9_](?i:cookie):))[ \t]*"
    r"(?:(?i:bearer|basic|token|negotiate)[ \t]+(?P<token>[^\s\"']+)|(?P<value>\S[^\r\n]*))"
)


def _mask_header_value(match: re.Match[str]) -> str:
    secret = "token" if match["token"] is not None else "value"
    return match.group(0)[: match.start(secret) - match.start()] + MASK


def _mask_header_values(text: str) -> str:
    return _HEADER.sub(_mask_header_value, text)


# The token is only looked at, not consumed, so that in "Basic Bearer <token>" the word
# "Bearer" (left alone as Basic's credential) is still seen as a scheme itself. "=" is
# allowed inside a token, not only as padding, so "Bearer password=x" hides "x" too.
_AUTH_CREDENTIAL = re.compile(
    r"[Bb](?:(?i:earer)(?<![A-Za-z0-9_-].{6})|(?i:asic)(?<![A-Za-z0-9_-].{5}))"
    r"[ \t]+(?=(?P<token>[A-Za-z0-9._~+/-][A-Za-z0-9._~+/=-]*))"
)
# "missing bearer token", "Basic auth required": the scheme's name used in prose.
_PROSE_AFTER_SCHEME = frozenset(
    {
        "token", "tokens", "auth", "authentication", "authorization", "credentials",
        "scheme", "header", "realm", "prefix", "format", "type", "is", "was", "not",
        "missing", "required", "invalid", "expired", "none", "null",
        "a", "an", "the", "of", "and", "or", "with", "for", "in", "to",
    }
)  # fmt: skip


def _looks_like_basic_credential(token: str) -> bool:
    """``Basic dXNlcjpwYXNz`` but not ``basic setup``: base64 has digits or mixed case."""
    body = token.rstrip("=")
    if len(token) < 8:
        return False
    if body != token or any(char.isdigit() or char in "+/" for char in body):
        return True
    return any(char.islower() for char in body) and any(char.isupper() for char in body[1:])


def _is_credential(found: re.Match[str]) -> bool:
    token = found["token"]
    if token.rstrip("=.").lower() in _PROSE_AFTER_SCHEME:
        return False
    is_basic = found.group(0)[1] in "aA"
    return not is_basic or _looks_like_basic_credential(token)


def _mask_auth_credentials(text: str) -> str:
    """``Bearer <token>`` and ``Basic <base64>`` anywhere in the line."""
    return _mask_spans(
        text,
        (found.span("token") for found in _AUTH_CREDENTIAL.finditer(text) if _is_credential(found)),
    )


_B64URL = "[A-Za-z0-9_-]"
_JWT = re.compile(rf"eyJ(?<!{_B64URL}eyJ){_B64URL}+\.{_B64URL}+\.{_B64URL}*(?:\.{_B64URL}+){{0,2}}")


def _mask_jwts(text: str) -> str:
    """Three (or, for JWE, five) base64url segments, the header starting ``eyJ``."""
    return _JWT.sub(MASK, text)


# (prefix, body): the prefix is literal text, so a key is recognised by it; the body's
# minimum length keeps words like "sk-learn" from matching.
_API_KEY_SHAPES: tuple[tuple[str, str], ...] = (
    ("sk-", "[A-Za-z0-9_-]{20,}"),  # OpenAI, Anthropic
    *(
        (f"{kind}_{mode}_", "[A-Za-z0-9]{8,}")
        for kind in ("sk", "pk", "rk")
        for mode in ("live", "test")
    ),
    ("whsec_", "[A-Za-z0-9]{16,}"),  # Stripe
    *((f"gh{kind}_", "[A-Za-z0-9]{20,}") for kind in "pousr"),  # GitHub
    ("github_pat_", "[A-Za-z0-9_]{20,}"),
    ("glpat-", "[A-Za-z0-9_-]{16,}"),  # GitLab
    *((f"xox{kind}-", "[A-Za-z0-9-]{8,}") for kind in "bpars"),  # Slack
    ("xapp-", "[A-Za-z0-9-]{8,}"),
    ("AKIA", "[0-9A-Z]{16,}"),  # AWS access key ids
    ("AIza", "[0-9A-Za-z_-]{35,}"),  # Google
    ("npm_", "[A-Za-z0-9]{36,}"),
    ("hf_", "[A-Za-z0-9]{30,}"),  # Hugging Face
    ("pxp_", "[A-Za-z0-9_-]{4,}"),  # our per-process plugin tokens
    ("pxm_", "[A-Za-z0-9_-]{4,}"),  # our mock developer credentials
    ("pxs_", "[A-Za-z0-9_-]{4,}"),  # our STS client secrets (host/upstream)
)
_API_KEY = re.compile(
    "|".join(f"{prefix}(?<![A-Za-z0-9]{prefix}){body}" for prefix, body in _API_KEY_SHAPES)
)


def _mask_api_keys(text: str) -> str:
    return _API_KEY.sub(MASK, text)


# Separators are rare and keys are not, so pairs are found from the separator leftwards:
# this pattern runs over the reversed line. The key (read backwards) must not continue
# into a word, a path or a URL's user name ("//x-access-token:") and must start with a
# letter, "_" or "-" ("--password=").
_PAIR_REVERSED = re.compile(
    r"[:=][ \t]*[\"']?(?P<key>[A-Za-z0-9_.-]{0,65}[A-Za-z_-])(?![A-Za-z0-9_./-])"
)
# An unterminated quote runs to the end of the line: better to hide too much.
_PAIR_VALUE = re.compile(
    rf"[ \t]*(?:{_SCHEMES}[ \t]+)?"
    r"(?:\"(?P<dq>(?:[^\"\\\r\n]|\\.)*)\"?"
    r"|'(?P<sq>(?:[^'\\\r\n]|\\.)*)'?"
    r"|(?P<bare>[^\s\"'&,;(){}\[\]<>]+))"
)
_SCHEME_PREFIX = re.compile(rf"{_SCHEMES}[ \t]+(?=\S)")
# "token: None" says the token is missing, which is worth seeing when debugging.
_ABSENT = frozenset({"null", "None", "nil", "undefined"})


def _secret_span(text: str, value: re.Match[str]) -> tuple[int, int]:
    """Where the secret part of a pair's value is; an empty span if there is none."""
    start, end = value.span("bare")
    if start >= 0:
        return (start, start) if text[start:end] in _ABSENT else (start, end)
    start, end = value.span("dq") if value["dq"] is not None else value.span("sq")
    scheme = _SCHEME_PREFIX.match(text, start, end)
    return (scheme.end() if scheme else start, end)


def _sensitive_value_spans(text: str) -> list[tuple[int, int]]:
    """The values of sensitive pairs, left to right; a value may hold another pair."""
    size = len(text)
    spans: list[tuple[int, int]] = []
    # Pairs are taken right to left, and a value is read no further than the value found
    # to its right, which it then joins ("Cookie= token: x" hides "token:" and "x"). So a
    # line of many pairs ("password=password=...") is read once, not once per pair.
    bound = size
    for found in _PAIR_REVERSED.finditer(text[::-1]):
        if not is_sensitive_key(text[size - found.end("key") : size - found.start("key")]):
            continue
        value_start = size - found.start()
        value = _PAIR_VALUE.match(text, value_start, bound)
        if value is not None and value.end() == bound < size and value.lastgroup != "bare":
            value = _PAIR_VALUE.match(text, value_start)  # a quoted value may go on past it
        if value is None:
            continue
        start, end = _secret_span(text, value)
        if start < end:
            spans.append((start, end))
            bound = start
    spans.reverse()
    return spans


def _mask_pairs(text: str) -> str:
    """``password=x``, ``token: x``, ``"secret": "x"``, ``?api_key=x&``: the value goes."""
    return _mask_spans(text, _sensitive_value_spans(text))


_EMAIL_LOCAL_PART = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}"
    r"@(?=[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}(?![A-Za-z0-9-]))"
)


def _mask_email_local_parts(text: str) -> str:
    """``jane.doe@example.com`` keeps its domain, which says which system it concerns."""
    return _EMAIL_LOCAL_PART.sub(MASK + "@", text)


_Processor = Callable[[str], str]
# A processor runs when one of its triggers occurs in the lower-cased line (no triggers:
# whenever the line passes the gate below). Order matters only for how the result reads:
# a URL password is masked before the e-mail rule sees "pass@host".
_PIPELINE: tuple[tuple[tuple[str, ...], _Processor], ...] = (
    (("@",), _mask_url_passwords),
    (("authorization", "cookie"), _mask_header_values),
    (("bearer", "basic"), _mask_auth_credentials),
    (("eyj",), _mask_jwts),
    ((), _mask_api_keys),
    (
        (
            "pass", "pwd", "secret", "token", "auth", "cookie", "session",
            "credential", "key", "jwt", "bearer", "signature",
        ),
        _mask_pairs,
    ),
    (("@",), _mask_email_local_parts),
)  # fmt: skip

# The fast path: most lines contain none of the triggers above, nor an API key prefix,
# and are returned as they are. Most triggers are found in one search whose alternatives
# all start with a character that is rare in log text; the words below have no rare
# letter and are looked for directly.
_RARE_TRIGGER = re.compile(
    r"@"
    r"|_(?:live_|test_|pat_|(?<=whsec_)|(?<=npm_)|(?<=hf_)|(?<=gh[pousr]_))"
    r"|j(?:wt|(?<=eyj))"
    r"|k(?:en|ey|ie|ia|-)"  # token, key, cookie, AKIA, sk-
    r"|wd(?<=pwd)"
    r"|x(?:ox|app-|[pms]_)"  # Slack, pxp_, pxm_ and pxs_
    r"|za"  # AIza
)
_COMMON_TRIGGERS = (
    "pass", "secret", "auth", "session", "credential", "signature", "bearer", "basic", "glpat",
)  # fmt: skip


def _contains_any(lowered: str, triggers: tuple[str, ...]) -> bool:
    for trigger in triggers:  # noqa: SIM110 - measurably faster than any() over a generator
        if trigger in lowered:
            return True
    return False


def _may_hold_secret(lowered: str) -> bool:
    return bool(_RARE_TRIGGER.search(lowered)) or _contains_any(lowered, _COMMON_TRIGGERS)


def _run_pipeline(text: str, lowered: str) -> str:
    for triggers, processor in _PIPELINE:
        if not triggers or _contains_any(lowered, triggers):
            text = processor(text)
    return text


_MOST_PASSES = 4


def mask_text(text: str) -> str:
    """Mask every secret found in free text; see the module docstring for what is found."""
    text = mask_known(text)
    lowered = text.lower()
    if not _may_hold_secret(lowered):
        return text
    # A mask can remove what stopped another rule from matching (a "/" inside what turns
    # out to be a URL's password), so a line that changed is masked again until it is
    # stable; that makes masking idempotent. Real lines settle in one or two passes.
    for _ in range(_MOST_PASSES):
        masked = _run_pipeline(text, lowered)
        if masked == text:
            break
        text, lowered = masked, masked.lower()
    return text


# --- structured values ----------------------------------------------------------------


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def mask_value(value: object, key: str | None = None) -> object:
    """Mask a JSON-like value: anything non-empty under a sensitive key becomes MASK,
    containers are masked recursively and strings go through :func:`mask_text`."""
    if key is not None and is_sensitive_key(key) and not _is_blank(value):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            item_key: mask_value(item, item_key if isinstance(item_key, str) else None)
            for item_key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(mask_value(item) for item in value)
    return value


def mask_line(line: str) -> str:
    """Mask one log line: a JSON object structurally (re-serialised compactly, keys in
    order, surrounding whitespace kept), anything else as text."""
    body = line.strip()
    if body.startswith("{") and body.endswith("}"):
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                masked = json.dumps(mask_value(parsed), ensure_ascii=False, separators=(",", ":"))
                start = line.index(body)
                return line[:start] + masked + line[start + len(body) :]
        except (ValueError, RecursionError):
            pass  # not JSON after all, or nested too deeply to walk: mask it as text
    return mask_text(line)
