"""Property tests for the manifest parser: whatever text arrives, parse_manifest returns a
Manifest or raises a PowerXError with a stable code and a 4xx status, quickly, without
running any YAML tag; valid manifests keep every value they declare."""

from __future__ import annotations

import copy
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerx.errors import PowerXError
from powerx.manifest import MAX_MANIFEST_CHARS, RUNTIMES, Manifest, parse_manifest

# The codes parse_manifest may answer with: part of the HTTP and CLI contract.
CODES = {"manifest_yaml", "manifest_invalid", "manifest_too_large"}

# No deadline: a wall-clock limit fails on a loaded machine, and speed is measured in
# benchmarks/fuzz_parsers.py, not asserted here.
FAST = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

VALID: dict[str, Any] = {
    "id": "com.example.hello",
    "name": "Hello",
    "version": "1.0.0",
    "runtime": "python3.11",
    "entry": "app.py:app",
    "host": {"api": ">=2.3 <3"},
}


def _verdict(text: str) -> Manifest | PowerXError:
    """parse_manifest's answer; any exception but a well-formed PowerXError fails the test."""
    try:
        return parse_manifest(text)
    except PowerXError as error:
        assert error.code in CODES, error.code
        assert 400 <= error.status < 500
        assert error.message
        return error


def _refused(text: str, code: str | None = None) -> PowerXError:
    verdict = _verdict(text)
    assert isinstance(verdict, PowerXError), "the manifest was accepted"
    if code is not None:
        assert verdict.code == code, verdict.message
    return verdict


def _dump(data: Any) -> str:
    # ASCII with escapes: with allow_unicode PyYAML writes U+0085 raw in a single-quoted
    # scalar, where its own loader folds it to a space.
    return yaml.safe_dump(data, sort_keys=False)


# -- arbitrary input -----------------------------------------------------------------------

# Pieces of YAML syntax, so that random text reaches the parser's deeper states (anchors,
# tags, flow and block collections, directives, documents) and not only its first error.
_YAML_PIECES = st.sampled_from(
    [
        ": ", "- ", "? ", "&a ", "*a", "&b ", "*b", "!!str ", "!!int ", "!!float ", "!!bool ",
        "!!null ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ", "!!python/name:os.system ",
        "!custom ", "<<: ", "{", "}", "[", "]", ", ", "\n", "  ", "\t", "'", '"', "|", ">-",
        "# c", "%YAML 1.1\n", "---\n", "...\n", "id", "name", "host", "api", "1.0.0", "~",
        "null", "yes", "0x", "0b", "0o", "_", ".", ".inf", "2001-12-14", "\\x00", "\ufeff", "é",
    ]
)  # fmt: skip


@FAST
@given(st.text())
def test_arbitrary_text_is_parsed_or_refused_with_a_stable_code(text: str) -> None:
    _verdict(text)


@FAST
@given(st.lists(st.one_of(_YAML_PIECES, st.text(max_size=4)), max_size=40).map("".join))
def test_yaml_shaped_noise_is_parsed_or_refused_with_a_stable_code(text: str) -> None:
    _verdict(text)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=8)
    | st.dates()
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=8) | st.integers(), children, max_size=4
    )


_NESTED = st.recursive(
    _SCALARS,
    _containers,
    max_leaves=20,
)


@FAST
@given(_NESTED)
def test_any_yaml_document_is_parsed_or_refused(document: Any) -> None:
    verdict = _verdict(_dump(document))
    if not isinstance(document, dict):
        assert isinstance(verdict, PowerXError) and verdict.code == "manifest_invalid"


@FAST
@given(st.dictionaries(st.sampled_from([*VALID, "permissions", "egress", "build"]), _NESTED))
def test_random_values_over_a_valid_manifest_are_kept_or_refused(overrides: dict[str, Any]) -> None:
    raw = {**VALID, **overrides}
    verdict = _verdict(_dump(raw))
    if isinstance(verdict, Manifest):
        for field in ("id", "name", "version", "runtime", "entry"):
            value = raw[field]  # pydantic reads YAML's !!binary as UTF-8 text
            assert getattr(verdict, field) == (
                value.decode() if isinstance(value, bytes) else value
            )
    else:
        assert verdict.code == "manifest_invalid"
        assert {p.where.split(".")[0] for p in verdict.problems} <= set(overrides)


# Any text, lone surrogates included (YAML's "\ud800" escape loads as one); st.text
# would leave them out.
_ANY_CHARACTER = st.characters(categories=["Cs"]) | st.characters(exclude_categories=[])
_ANY_TEXT = st.lists(_ANY_CHARACTER, max_size=20).map("".join)
_TEXT_FIELDS = ["id", "name", "version", "runtime", "entry", "host.api", "permissions.0"]
_TEXT_FIELDS += ["egress.0", "build.command", "build.esbuild.format", "build.esbuild.external.0"]


def _with_value(path: str, value: Any) -> dict[str, Any]:
    """VALID with ``value`` at a dotted path (a number is a list index)."""
    raw = copy.deepcopy(VALID)
    parts = path.split(".")
    node: Any = raw
    for part, following in itertools.pairwise(parts):
        node = node.setdefault(part, [] if following.isdigit() else {})
    if parts[-1].isdigit():
        node.append(value)
    else:
        node[parts[-1]] = value
    return raw


@FAST
@given(field=st.sampled_from(_TEXT_FIELDS), value=_ANY_TEXT)
def test_any_text_in_any_text_field_is_parsed_or_refused(field: str, value: str) -> None:
    verdict = _verdict(_dump(_with_value(field, value)))
    if isinstance(verdict, PowerXError):
        assert verdict.code == "manifest_invalid"
        assert {p.where for p in verdict.problems} <= {field, field.rsplit(".", 1)[0]}


# -- hostile YAML --------------------------------------------------------------------------


def _alias_bomb(levels: int, fanout: int, field: str) -> str:
    """Billion laughs: each anchor lists the one before ``fanout`` times; ``field`` is
    the last anchor, fanout**levels strings if expanded."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fanout)}]" for n in range(1, levels)]
    rest = {k: v for k, v in VALID.items() if k != field}
    return _dump(rest) + "\n".join(lines) + f"\n{field}: *l{levels - 1}\n"


@FAST
@given(
    levels=st.integers(1, 12),
    fanout=st.integers(2, 12),
    field=st.sampled_from(["name", "id", "permissions", "egress", "host", "build", "extra"]),
)
def test_alias_bombs_are_refused_without_being_expanded(
    levels: int, fanout: int, field: str
) -> None:
    error = _refused(_alias_bomb(levels, fanout, field), "manifest_invalid")
    # One problem per anchor (unknown fields) and at most one per item of the field.
    assert len(error.problems) <= levels + fanout + 1
    assert all(len(p.message) < 300 for p in error.problems)


_OPEN_CLOSE = {"flow list": ("[", "]"), "flow map": ("{a: ", "}")}


@settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 20_000), kind=st.sampled_from([*_OPEN_CLOSE, "block list"]))
def test_deep_nesting_is_parsed_or_refused(depth: int, kind: str) -> None:
    if kind == "block list":  # indentation grows with depth: the cap stops it first
        nested = "".join("  " * n + "-\n" for n in range(min(depth, 300)))
        text = _dump(VALID) + "extra:\n" + nested
    else:
        opening, closing = _OPEN_CLOSE[kind]
        text = _dump(VALID) + "extra: " + opening * depth + "1" + closing * depth + "\n"
    verdict = _verdict(text)
    expected = {"manifest_invalid", "manifest_yaml"}  # an unknown field, or too deep
    if len(text) > MAX_MANIFEST_CHARS:
        expected = {"manifest_too_large"}
    assert isinstance(verdict, PowerXError) and verdict.code in expected


def _tagged(tag: str, canary: Path) -> str:
    """YAML that would create ``canary`` if the loader ran Python tags."""
    path = str(canary)
    payloads = {
        "apply": f"!!python/object/apply:os.mkdir ['{path}']",
        "apply-mapping": f"!!python/object/apply:os.mkdir {{args: ['{path}']}}",
        "new": f"!!python/object/new:pathlib.Path ['{path}']",
        "name": "!!python/name:os.system",
        "module": "!!python/module:os",
        "object": "!!python/object:argparse.Namespace {x: 1}",
        "local": f"!<tag:yaml.org,2002:python/object/apply:os.mkdir> ['{path}']",
        "subprocess": f"!!python/object/apply:subprocess.check_call [['mkdir', '{path}']]",
    }
    return payloads[tag]


@pytest.mark.parametrize(
    "tag", ["apply", "apply-mapping", "new", "name", "module", "object", "local", "subprocess"]
)
@pytest.mark.parametrize("where", ["name", "top", "key", "nested"])
def test_python_tags_are_refused_and_never_run(tag: str, where: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        canary = Path(tmp) / "ran"
        payload = _tagged(tag, canary)
        texts = {
            "name": _dump({k: v for k, v in VALID.items() if k != "name"}) + f"name: {payload}\n",
            "top": payload + "\n",
            "key": _dump(VALID) + f"? {payload}\n: 1\n",
            "nested": _dump(VALID) + f"build: {{command: [{payload}]}}\n",
        }
        _refused(texts[where], "manifest_yaml")
        assert not canary.exists()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("- id\n- name\n", "manifest_invalid"),
        ("just a string\n", "manifest_invalid"),
        ("42\n", "manifest_invalid"),
        ("", "manifest_invalid"),
        ("~\n", "manifest_invalid"),
        ("--- {}\n--- {}\n", "manifest_yaml"),
        ("a: &r [*r]\n", "manifest_invalid"),
        (_dump(VALID) + "name: " + "1" * 5000 + "\n", "manifest_yaml"),
        (_dump(VALID) + "name: 0x" + "f" * 5000 + "\n", "manifest_invalid"),
        (_dump(VALID) + "permissions: [0x" + "f" * 5000 + "]\n", "manifest_invalid"),
        (_dump(VALID) + "permissions: !!binary aGVsbG8=\n", "manifest_invalid"),
        (_dump(VALID) + "permissions: !!set {a, b}\n", "manifest_invalid"),
        (_dump(VALID) + "? [a, b]\n: 1\n", "manifest_yaml"),
        (_dump(VALID) + "name: \0\n", "manifest_yaml"),
        (_dump(VALID) + "permissions: !!timestamp nope\n", "manifest_yaml"),
        (_dump(VALID) + "permissions: !!bool nope\n", "manifest_yaml"),
        (_dump(VALID) + "permissions: !!int ''\n", "manifest_yaml"),
        (_dump(VALID) + "permissions: !!int 0x\n", "manifest_yaml"),
        (_dump(VALID) + "permissions: !!float .\n", "manifest_yaml"),
        (_dump({**VALID, "host": {"api": "\ud800"}}), "manifest_invalid"),
        (_dump(VALID) + "x" * MAX_MANIFEST_CHARS, "manifest_too_large"),
        ("name: " + "x" * 10_000_000, "manifest_too_large"),
        ("".join(f"k{n}: v\n" for n in range(100_000)), "manifest_too_large"),
    ],
    ids=[
        "top-list",
        "top-string",
        "top-int",
        "empty",
        "top-null",
        "two-documents",
        "recursive-alias",
        "int-over-4300-digits",
        "hex-int-over-4300-digits",
        "hex-int-in-a-list",
        "binary-tag",
        "set-tag",
        "unhashable-key",
        "nul-character",
        "timestamp-tag-on-a-word",
        "bool-tag-on-a-word",
        "int-tag-on-nothing",
        "int-tag-on-0x",
        "float-tag-on-a-dot",
        "lone-surrogate-in-host-api",
        "just-over-the-cap",
        "huge-scalar",
        "hundred-thousand-keys",
    ],
)
def test_hostile_manifests_are_refused_quickly(text: str, code: str) -> None:
    started = time.perf_counter()
    error = _refused(text, code)
    assert time.perf_counter() - started < 1
    assert len(error.message) < 300


def test_duplicate_keys_keep_the_last_value() -> None:
    """PyYAML's safe loader lets a later key win; the manifest reflects what it loaded."""
    verdict = _verdict(_dump(VALID) + "id: com.example.second\n")
    assert isinstance(verdict, Manifest) and verdict.id == "com.example.second"


# -- valid manifests -----------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_IDS = st.builds(
    lambda first, rest: ".".join([first, *rest]),
    st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    st.lists(st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True), min_size=1, max_size=4),
)
_NUMBER = st.integers(0, 10**6).map(str)
_PRERELEASE_PART = _NUMBER | st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]{0,6}", fullmatch=True)
_VERSIONS = st.builds(
    lambda core, pre, build: (
        ".".join(core)
        + (f"-{'.'.join(pre)}" if pre else "")
        + (f"+{'.'.join(build)}" if build else "")
    ),
    st.tuples(_NUMBER, _NUMBER, _NUMBER),
    st.lists(_PRERELEASE_PART, max_size=3),
    st.lists(st.from_regex(r"[0-9a-zA-Z-]{1,6}", fullmatch=True), max_size=3),
)
_API = st.builds(lambda major, minor: f"{major}.{minor}", st.integers(0, 20), st.integers(0, 20))
_COMPARATOR = st.one_of(
    st.builds(lambda a, b: f">={a} <{b}", _API, _API),
    st.builds(lambda a: f"^{a}", _API),
    st.builds(lambda a: f"~{a}", _API),
    _API,
    st.builds(lambda a: f"=={a}", _API),
    st.integers(0, 20).map(lambda major: f"{major}.x"),
    st.just("*"),
)
_RANGES = st.lists(_COMPARATOR, min_size=1, max_size=3).map(" || ".join)
_SCOPES = st.from_regex(r"[a-z][a-z0-9-]{0,8}:[a-z][a-z0-9-]{0,8}", fullmatch=True)
_HOSTS = st.builds(
    lambda wildcard, labels, port: ("*." if wildcard else "") + ".".join(labels) + port,
    st.booleans(),
    st.lists(_LABEL, min_size=1, max_size=4),
    st.sampled_from(["", ":443", ":8080"]),
).filter(lambda host: ":" in host or host.split(".")[0] not in {"localhost", "127", "0"})
_HOSTS = _HOSTS.flatmap(lambda host: st.sampled_from([host, host.upper()]))
_BUILDS = st.one_of(
    st.none(),
    st.fixed_dictionaries({"command": st.text(min_size=1), "output": st.text(min_size=1)}),
    st.fixed_dictionaries(
        {
            "esbuild": st.fixed_dictionaries(
                {},
                optional={
                    "target": st.sampled_from(["node18", "es2022"]),
                    "format": st.sampled_from(["cjs", "esm"]),
                    "sourcemap": st.booleans(),
                    "minify": st.booleans(),
                    "external": st.lists(st.text(min_size=1), max_size=3),
                },
            )
        }
    ),
)
_MANIFESTS = st.fixed_dictionaries(
    {
        "id": _IDS,
        "name": st.text(min_size=1),
        "version": _VERSIONS,
        "runtime": st.sampled_from(RUNTIMES),
        "entry": st.text(min_size=1),
        "host": st.fixed_dictionaries({"api": _RANGES}),
    },
    optional={
        "permissions": st.lists(_SCOPES, max_size=5),
        "egress": st.lists(_HOSTS, max_size=5),
        "build": _BUILDS,
    },
)


@FAST
@given(_MANIFESTS)
def test_valid_manifests_parse_and_keep_their_values(raw: dict[str, Any]) -> None:
    verdict = _verdict(_dump(raw))
    assert isinstance(verdict, Manifest), verdict
    kept = (verdict.id, verdict.name, verdict.version, verdict.runtime, verdict.entry)
    assert kept == (raw["id"], raw["name"], raw["version"], raw["runtime"], raw["entry"])
    assert verdict.host.api == raw["host"]["api"]
    assert verdict.permissions == raw.get("permissions", [])
    assert verdict.egress == [host.lower() for host in raw.get("egress", [])]
    build = verdict.build.model_dump(exclude_unset=True) if verdict.build else None
    assert build == raw.get("build")


def test_a_remembered_manifest_is_a_fresh_copy_each_time() -> None:
    """Good manifests are remembered by text (each hot reload parses one twice); a caller
    that changes its copy must not change what the next caller gets."""
    text = yaml.safe_dump({**VALID, "permissions": ["contacts:read"]})
    first = parse_manifest(text)
    first.permissions.append("messages:send")
    first.host.api = "^9.0"
    second = parse_manifest(text)
    assert second is not first
    assert second.permissions == ["contacts:read"]
    assert second.host.api == VALID["host"]["api"]
    broken = text.replace("version: 1.0.0", "version: one")
    assert broken != text
    for _ in range(2):  # a bad manifest is refused every time, not remembered
        with pytest.raises(PowerXError):
            parse_manifest(broken)
