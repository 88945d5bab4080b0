"""Masking of secrets in plugin log output: keys, free-text rules, structured lines."""

from __future__ import annotations

import json
import random
import string

import pytest

from powerx.observe.masking import MASK, is_sensitive_key, mask_line, mask_text, mask_value

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
UUID = "550e8400-e29b-41d4-a716-446655440000"

API_KEYS = [
    "sk-proj-4f9Qm2Lr8TzXc1Vb7Nd3Kw6Hs0Jy5PaQ",
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv",
    "sk_live_51HxYzAbCdEf0123456789",
    "pk_live_51HxYzAbCdEf0123456789",
    "rk_test_51HxYzAbCdEf0123456789",
    "whsec_AbCdEf0123456789AbCd",
    "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    "glpat-AbCdEfGhIj0123456789",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
    "xoxp-123456789012-abcdefABCDEF",
    "xapp-1-A0123456789-abcdef",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA-1234567890abcdefghijklmnopqrstu",
    "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123",
    "pxp_Zr4Q8xJm2LkT9vWcN1bY6hFdS3aEoPqU",
    "pxp_forged",
    "pxm_Zr4Q8xJm2LkT9vWcN1bY6hFdS3aEoPqU",
    "pxs_q2Vd8KxN4mT1bR7cYw0sHf3jLp9aEuZg6oQiXkMnB5c",  # an STS client secret
]

ORDINARY_LINES = [
    "generation 3 started",
    "GET /plugins/x/ 200 4.1 ms",
    "tokens: 5",
    "max_tokens=100 prompt_tokens=12 token_count=3 token_type=bearer",
    f"stored artefact sha256:{SHA256}",
    f"digest={SHA256} size=1024",
    f"request {UUID} done",
    f"id: {UUID}",
    "wrote /home/dev/.config/powerx/credentials.json",
    r"C:\Users\dev\AppData\Local\powerx\secrets.db opened",
    "2024-05-01T10:00:00.123Z INFO reload took 12 ms",
    "missing bearer token",
    "Basic auth required",
    "basic setup complete",
    "the author wrote a tokenizer",
    "installed react@18.2.0 and @types/node@20.1.0",
    "sk-learn pipeline fitted",
    "task-runner-0123456789abcdefghijkl started",
    "user=bob page=2 status=ok",
    "token: None",
    'password=""',
    "cache key computed for session 42",
    "naïve café 中文 ✓ — nothing secret here",
    "",
]


# --- is_sensitive_key ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "dbPassword",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "client_secret",
        "clientSecret",
        "token",
        "access_token",
        "accessToken",
        "refresh_token",
        "id_token",
        "csrftoken",
        "X-Api-Key",
        "api_key",
        "apiKey",
        "APIKEY",
        "api-key",
        "api_keys",
        "private_key",
        "privateKey",
        "ssh_key",
        "aws_access_key_id",
        "secret_access_key",
        "Authorization",
        "proxy-authorization",
        "auth",
        "authToken",
        "cookie",
        "Set-Cookie",
        "cookies",
        "session",
        "sessionId",
        "session_id",
        "credential",
        "credentials",
        "jwt",
        "signature",
        "password_hash",
        "POWERX_PLUGIN_TOKEN",
    ],
)
def test_sensitive_keys_are_recognised_whatever_their_case_or_separator(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authority",
        "tokenizer_name",
        "tokenizer",
        "tokens",
        "max_tokens",
        "sessions",
        "path",
        "user",
        "username",
        "email",
        "key",
        "keys",
        "cache_key",
        "id",
        "digest",
        "sha256",
        "secretary",
        "",
    ],
)
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "token_count",
        "token_type",
        "token_expires_at",
        "secret_name",
        "auth_url",
        "auth_enabled",
        "password_file",
        "private_key_path",
        "cookie_max_age",
        "session_timeout",
    ],
)
def test_keys_that_describe_a_secret_rather_than_hold_it_are_not_sensitive(key: str) -> None:
    assert not is_sensitive_key(key)


# --- mask_text: one rule at a time -----------------------------------------------------


def test_bearer_token_is_masked_keeping_the_scheme() -> None:
    assert mask_text("Bearer abc.def") == "Bearer ***"
    assert mask_text("sent bearer pxq-123/abc+def== upstream") == "sent bearer *** upstream"


def test_basic_credentials_are_masked_in_an_authorization_header_and_alone() -> None:
    assert mask_text("Authorization: Basic xyz") == "Authorization: Basic ***"
    assert mask_text("header was Basic dXNlcjpwYXNz") == "header was Basic ***"


def test_authorization_header_with_another_scheme_is_masked_to_the_end_of_the_line() -> None:
    line = 'Authorization: Digest username="bob", response="6629fae49393a053"'
    assert mask_text(line) == "Authorization: ***"


def test_cookie_headers_are_masked_to_the_end_of_the_line() -> None:
    assert mask_text("Cookie: theme=dark; sid=9f8e7d6c") == "Cookie: ***"
    assert mask_text("Set-Cookie: session=abc; Path=/; HttpOnly") == "Set-Cookie: ***"


def test_jwt_is_masked_anywhere_in_the_line() -> None:
    assert mask_text(f"verified {JWT} ok") == "verified *** ok"
    assert mask_text(f"id_token={JWT}") == "id_token=***"
    assert mask_text(f"({JWT})") == "(***)"


@pytest.mark.parametrize("api_key", API_KEYS)
def test_api_keys_with_a_known_prefix_are_masked(api_key: str) -> None:
    assert mask_text(f"using {api_key} for upstream") == "using *** for upstream"


def test_url_password_is_masked_keeping_user_and_host() -> None:
    assert mask_text("https://user:pass@host/x") == "https://user:***@host/x"
    assert mask_text("redis://:s3cret@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert mask_text("postgres://app:p@ss@db:5432/app") == "postgres://app:***@db:5432/app"


def test_url_without_password_keeps_its_port_and_path() -> None:
    line = "GET https://api.example.com:8443/v1/items?page=2"
    assert mask_text(line) == line


def test_url_user_named_like_a_sensitive_key_keeps_the_host() -> None:
    line = "cloning https://x-access-token:ghs_AbCdEfGhIjKlMnOpQrSt01@github.com/o/r.git"
    assert mask_text(line) == "cloning https://x-access-token:***@github.com/o/r.git"


def test_email_local_part_is_masked_keeping_the_domain() -> None:
    assert mask_text("invited jane.doe@example.com") == "invited ***@example.com"
    assert mask_text("<ops+alerts@mail.example.co.uk>") == "<***@mail.example.co.uk>"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("password=hunter2", "password=***"),
        ("token: abc", "token: ***"),
        ("login user=bob password=hunter2 ok", "login user=bob password=*** ok"),
        ('line {"secret": "x", "user": "bob"} end', 'line {"secret": "***", "user": "bob"} end'),
        ("{'api_key': 'abc', 'n': 1}", "{'api_key': '***', 'n': 1}"),
        ("GET /x?api_key=abc&x=1", "GET /x?api_key=***&x=1"),
        ("GET /x?x=1&access_token=abc", "GET /x?x=1&access_token=***"),
        ("--password=hunter2 --verbose", "--password=*** --verbose"),
        ('DB_PASSWORD="correct horse battery"', 'DB_PASSWORD="***"'),
        ("sessionId = 'a b c'", "sessionId = '***'"),
        ("POWERX_PLUGIN_TOKEN=abc123", "POWERX_PLUGIN_TOKEN=***"),
        ('"Authorization": "Bearer abc"', '"Authorization": "Bearer ***"'),
        ("token: Token abc", "token: Token ***"),
        ('secret="unterminated and more', 'secret="***'),
        ("auth=x, user=y", "auth=***, user=y"),
    ],
)
def test_value_of_a_sensitive_pair_in_text_is_masked(line: str, expected: str) -> None:
    assert mask_text(line) == expected


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "client_secret",
        "token",
        "refreshToken",
        "X-Api-Key",
        "apikey",
        "private_key",
        "Authorization",
        "auth",
        "cookie",
        "session",
        "SESSIONID",
        "credentials",
        "jwt",
        "bearer",
        "signature",
    ],
)
def test_every_kind_of_sensitive_key_is_found_in_text(key: str) -> None:
    assert mask_text(f"{key}=zQ9vLm2") == f"{key}=***"
    assert mask_text(f'"{key}": "zQ9vLm2"') == f'"{key}": "***"'


def test_absent_values_stay_visible_for_debugging() -> None:
    assert mask_text("token: None") == "token: None"
    assert mask_text('password=""') == 'password=""'
    assert mask_text('{"token": null}') == '{"token": null}'


# --- mask_text: what is not masked ---------------------------------------------------


@pytest.mark.parametrize("line", ORDINARY_LINES)
def test_ordinary_log_lines_are_left_alone(line: str) -> None:
    assert mask_text(line) == line


def test_digests_uuids_and_paths_survive_next_to_a_secret() -> None:
    line = f"artefact {SHA256} of run {UUID} in /var/lib/powerx/a password=hunter2"
    expected = f"artefact {SHA256} of run {UUID} in /var/lib/powerx/a password=***"
    assert mask_text(line) == expected


# --- mask_value ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["hunter2", 1234, 3.5, True, {"a": 1}, ["x", "y"], ("x",)])
def test_value_under_a_sensitive_key_is_masked_whatever_its_type(value: object) -> None:
    assert mask_value(value, key="password") == MASK


@pytest.mark.parametrize("value", [None, "", [], {}, ()])
def test_empty_value_under_a_sensitive_key_is_kept(value: object) -> None:
    assert mask_value(value, key="token") == value


def test_nested_dicts_and_lists_are_masked_by_key_and_by_text() -> None:
    record = {
        "user": {"name": "jane", "email": "jane@example.com", "password": "x"},
        "headers": {"Authorization": "Bearer abc", "Accept": "application/json"},
        "items": [{"api_key": "k", "id": 7}, "token=abc", 5, None],
        "credentials": {"user": "a", "pass": "b"},
        "token_count": 12,
        "note": "ok",
    }
    assert mask_value(record) == {
        "user": {"name": "jane", "email": "***@example.com", "password": MASK},
        "headers": {"Authorization": MASK, "Accept": "application/json"},
        "items": [{"api_key": MASK, "id": 7}, "token=***", 5, None],
        "credentials": MASK,
        "token_count": 12,
        "note": "ok",
    }


def test_mask_value_leaves_its_input_untouched_and_keeps_container_types() -> None:
    record = {"password": "x", "pair": ("a", "token=b"), 3: "int key"}
    snapshot = json.dumps(record, default=str)
    assert mask_value(record) == {"password": MASK, "pair": ("a", "token=***"), 3: "int key"}
    assert json.dumps(record, default=str) == snapshot


def test_plain_scalars_pass_through_mask_value() -> None:
    assert mask_value(42) == 42
    assert mask_value(None) is None
    assert mask_value("Bearer abc") == "Bearer ***"


# --- mask_line -------------------------------------------------------------------------


def test_json_line_is_masked_structurally_compact_and_in_key_order() -> None:
    line = json.dumps(
        {
            "level": "info",
            "msg": "login password=abc",
            "user": {"email": "a@b.com", "password": "x", "token": None},
            "items": [{"api_key": "k"}],
            "zeta": "é",
        }
    )
    assert mask_line(line) == (
        '{"level":"info","msg":"login password=***",'
        '"user":{"email":"***@b.com","password":"***","token":null},'
        '"items":[{"api_key":"***"}],"zeta":"é"}'
    )


def test_json_line_keeps_its_surrounding_whitespace() -> None:
    assert mask_line('  {"secret": "x"}\n') == '  {"secret":"***"}\n'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("password=hunter2\n", "password=***\n"),
        ('["token=abc", 1]', '["token=***", 1]'),
        ('{"secret": "x", broken', '{"secret": "***", broken'),
        ('{"secret": "x"} trailing', '{"secret": "***"} trailing'),
        ("{not json password=x}", "{not json password=***}"),
    ],
)
def test_line_that_is_not_a_json_object_is_masked_as_text(line: str, expected: str) -> None:
    assert mask_line(line) == expected


def test_deeply_nested_json_line_does_not_raise() -> None:
    line = '{"a":' * 5000 + '"password=x"' + "}" * 5000
    assert "password=x" not in mask_line(line)


# --- idempotence -----------------------------------------------------------------------

MASKED_ONCE_CORPUS = [
    "Authorization: Bearer abc.def",
    "Authorization: Basic xyz",
    "Cookie: a=b; c=d",
    f"jwt {JWT} and key {API_KEYS[0]}",
    "https://user:pass@host/x and jane@example.com",
    "password=hunter2 token: abc ?api_key=abc&x=1",
    '{"secret": "x"} inside text',
    'secret="unterminated',
    "***@example.com password=*** Bearer ***",
    *ORDINARY_LINES,
]


@pytest.mark.parametrize("line", MASKED_ONCE_CORPUS)
def test_masking_twice_changes_nothing_more(line: str) -> None:
    once = mask_text(line)
    assert mask_text(once) == once
    once_as_line = mask_line(line)
    assert mask_line(once_as_line) == once_as_line


def test_masking_a_json_line_twice_changes_nothing_more() -> None:
    line = json.dumps({"msg": "Bearer abc", "password": "x", "nested": {"auth": [1, 2]}})
    once = mask_line(line)
    assert mask_line(once) == once


# --- properties over random text -------------------------------------------------------

_FRAGMENTS = [
    "password", "token", "key", "Bearer ", "Basic ", "eyJ", "sk-", "ghp_", "AKIA", "pxp_",
    "://", "@", "=", ":", ": ", '"', "'", " ", "\t", "\n", "&", "?", "/", ".", "-", "_",
    "secret", "Authorization", "Cookie", "session", "api_key", "user", "example.com",
    "{", "}", "[", "]", ",", ";", "\\", "é", "中", "\ud800", "\x00", MASK, "None",
]  # fmt: skip
_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " \t\néü中\u200b"

PLANTED = [
    # (text planted in the line, the part of it that must never survive)
    ("Bearer abc.def-123_XYZ", "abc.def-123_XYZ"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    (JWT, JWT),
    *((api_key, api_key) for api_key in API_KEYS),
    ("https://admin:s3cr3tP4ss@db.internal:5432/app", "s3cr3tP4ss"),
    ("jane.doe@example.com", "jane.doe"),
    ("password=hunter2hunter2", "hunter2hunter2"),
    ("token: abc123secretvalue", "abc123secretvalue"),
    ('{"client_secret": "zzTopSecret99"}', "zzTopSecret99"),
    ("?api_key=K3yV4lu3xyz&page=2", "K3yV4lu3xyz"),
    ("Cookie: sessionid=9f8e7d6c5b4a; theme=dark", "9f8e7d6c5b4a"),
]


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 25)):
        if rng.random() < 0.6:
            parts.append(rng.choice(_FRAGMENTS))
        else:
            parts.append("".join(rng.choices(_ALPHABET, k=rng.randint(1, 12))))
    return "".join(parts)


def test_random_text_never_raises_and_masks_idempotently() -> None:
    rng = random.Random(20240501)
    for _ in range(3000):
        text = _random_text(rng)
        once = mask_text(text)
        assert mask_text(once) == once, text
        assert isinstance(mask_line(text), str)


def test_planted_secret_never_survives_in_random_surroundings() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        planted, secret = rng.choice(PLANTED)
        line = f"{_random_text(rng)} {planted} {_random_text(rng)}"
        assert secret not in mask_text(line), line
        assert secret not in mask_line(line), line


def test_long_pathological_lines_are_masked_without_raising() -> None:
    for text in ["a" * 100_000, "a@" * 50_000, "password=" * 20_000, '"token": "' + "x" * 100_000]:
        assert isinstance(mask_text(text), str)
