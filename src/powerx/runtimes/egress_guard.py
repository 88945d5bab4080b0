"""Egress guard for Python plugin processes: no production PowerX API, and no host outside
the manifest's ``egress`` list and the simulator.

One audit hook (PEP 578; it cannot be removed) is the single decision point:

- name lookups (``socket.getaddrinfo``, ``gethostbyname[_ex]``, ``gethostbyaddr``,
  ``getnameinfo``) are refused before they happen unless the name is allowed by
  ``egress``, a loopback name or an IP address; a production name is never looked up;
- connections and datagrams (``socket.connect``/``connect_ex``, ``sendto``, ``sendmsg``)
  are decided on the actual address and port. Allowed: the simulator's host API port and
  the egress proxy port, on loopback only; loopback ports the manifest names
  (``localhost:8080``); IP addresses it lists; and (address, port) pairs learnt from
  looking up an allowed name. A name that resolves to a loopback address never opens it;
- subprocesses whose arguments name a production host are refused.

Plugin code is not trusted, so the hook keeps what it decides with out of the plugin's
reach: its state lives in closure cells of functions nothing else refers to, holds only
immutable values (rebound, never mutated), and uses only builtins captured before plugin
code runs (a plugin may patch ``socket``, ``ipaddress`` or ``builtins``; the hook does not
call them). ``gc.get_objects``/``get_referrers``/``get_referents``, the one way to reach
those functions, are refused. ``socket.getaddrinfo`` is replaced by a function that asks
the hook to resolve (an audit event of its own), so the addresses learnt are the
resolver's, whatever the caller passes or patches.

Each block raises :class:`EgressBlocked` (an ``OSError``, so HTTP clients report it as a
connection error carrying our message) and is reported to the simulator on stdout.
Policy comes from ``POWERX_EGRESS`` (JSON: ``allow`` entries ``host`` or ``host:port``,
``deny`` production patterns, ``simulator`` and ``proxy`` "host:port"), set per generation.
This file needs only the standard library: ``python_child/sitecustomize.py`` loads it by
path into any ``python`` a plugin starts.
"""

from __future__ import annotations

import _json
import _socket
import _thread
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

CONTROL_PREFIX = "@@powerx "
POLICY_ENV = "POWERX_EGRESS"
RESOLVE_EVENT = "powerx.egress.resolve"  # raised by the guard's getaddrinfo, handled by its hook
FIX_PRODUCTION = (
    "plugins in the simulator must not call production PowerX; use the mock host API through "
    "POWERX_HOST_URL (the powerx_plugin helper does)"
)
FIX_EGRESS = "add the host to `egress` in plugin.yaml, or call it through the host API"
FIX_LOOPBACK = (
    "a plugin reaches the simulator only on its host API port; name another local service "
    "with its port in `egress` (localhost:8080)"
)
FIX_PROTECTED = "plugins cannot inspect the interpreter's objects; debug with `powerx debug`"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_HOST_IN_TEXT = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:[^\s/@:]+(?::[^\s/@]*)?@)?([a-z0-9.-]+)")
_INSTALLED = "_powerx_egress_guard_installed"  # on sys: this module may be loaded twice

Verdict = tuple[str, str, str]  # (reason code, what it means, fix)
Pair = tuple[str, int | None]  # (address or name, port); None: any port


class EgressBlocked(PermissionError):
    """Raised where a plugin tried to reach a host it may not reach."""


class Rules(NamedTuple):
    """The policy's pure functions, built by :func:`_rules` from captured builtins."""

    normalise: Callable[[str], str]
    matches: Callable[[str, str], bool]
    canonical_ip: Callable[[str], str | None]
    is_local_ip: Callable[[str], bool]
    split_entry: Callable[[str], Pair]
    name_verdict: Callable[[str, int | None, tuple[Pair, ...], tuple[str, ...]], Verdict | None]
    address_verdict: Callable[
        [str, int, tuple[Pair, ...], frozenset[Pair], frozenset[Pair]], Verdict | None
    ]
    reverse_verdict: Callable[[str, tuple[Pair, ...], frozenset[Pair]], Verdict | None]
    ports_for: Callable[[str, tuple[Pair, ...]], tuple[int | None, ...]]


def _rules() -> Rules:
    """The decision functions. Every name they use is bound here, when this runs (before
    plugin code), so patching a module or ``builtins`` later changes nothing they do;
    they call methods of exact ``str`` values only, which plugin code cannot change."""
    inet_pton, inet_ntop = _socket.inet_pton, _socket.inet_ntop
    af_inet, af_inet6 = _socket.AF_INET, _socket.AF_INET6
    loopback_names = LOOPBACK_NAMES
    v4_mapped = b"\0" * 10 + b"\xff\xff"
    production = ("production_host", "production PowerX API", FIX_PRODUCTION)
    outside = ("egress_not_allowed", "not in the manifest's egress list", FIX_EGRESS)
    loopback = ("egress_not_allowed", "a local port other than the simulator's", FIX_LOOPBACK)
    _int, _tuple = int, tuple

    def normalise(host: str) -> str:
        return host.strip().strip("[]").rstrip(".").lower()

    def matches(host: str, pattern: str) -> bool:
        """``api.powerx.io`` matches itself; ``*.powerx.io`` matches any subdomain."""
        host, pattern = normalise(host), normalise(pattern)
        if pattern.startswith("*."):
            return host.endswith(pattern[1:]) or host == pattern[2:]
        return host == pattern

    def canonical_ip(text: str) -> str | None:
        """The address in its one canonical form (IPv4-mapped IPv6 as IPv4); None for a
        name. Strict: ``127.1`` or ``0x7f000001`` are names here (and so refused)."""
        text = text.strip().strip("[]").partition("%")[0]
        try:
            return inet_ntop(af_inet, inet_pton(af_inet, text))
        except (OSError, ValueError):
            pass
        try:
            packed = inet_pton(af_inet6, text)
        except (OSError, ValueError):
            return None
        if packed[:12] == v4_mapped:
            return inet_ntop(af_inet, packed[12:])
        return inet_ntop(af_inet6, packed)

    def is_local_ip(ip: str) -> bool:
        """Loopback or unspecified (connecting to 0.0.0.0 reaches this machine too)."""
        return ip.startswith("127.") or ip in ("0.0.0.0", "::1", "::")

    def split_entry(entry: str) -> Pair:
        """``host:443`` -> (host, 443); ``host`` -> (host, None)."""
        host, colon, port = entry.rpartition(":")
        if colon and host and ":" not in host and port.isdigit() and 0 < _int(port) < 65536:
            return normalise(host), _int(port)
        return normalise(entry), None

    def name_verdict(
        host: str, port: int | None, allow: tuple[Pair, ...], deny: tuple[str, ...]
    ) -> Verdict | None:
        """May this name be looked up (``port`` None) or connected to by name?"""
        host = normalise(host)
        if not host.isascii():
            return outside  # only IDNA (xn--) names can match an entry
        for pattern in deny:
            if matches(host, pattern):
                return production
        if canonical_ip(host) is not None or host in loopback_names:
            return None  # the address decides (connect), and looking it up asks no server
        for pattern, allowed_port in allow:
            if matches(host, pattern) and (port is None or allowed_port in (None, port)):
                return None
        return outside

    def address_verdict(
        ip: str,
        port: int,
        allow: tuple[Pair, ...],
        local: frozenset[Pair],
        learnt: frozenset[Pair],
    ) -> Verdict | None:
        """May a connection go to this (canonical) address and port?"""
        if (ip, port) in local:
            return None
        if is_local_ip(ip):
            return loopback
        for pattern, allowed_port in allow:
            if pattern == ip and allowed_port in (None, port):
                return None
        if (ip, None) in learnt or (ip, port) in learnt:
            return None
        return outside

    def reverse_verdict(
        ip: str, allow: tuple[Pair, ...], learnt: frozenset[Pair]
    ) -> Verdict | None:
        """May this address be looked up in reverse (a query its reverse zone's server
        sees)? Local ones, and those the plugin may reach on some port."""
        if is_local_ip(ip):
            return None
        for pattern, _ in allow:
            if pattern == ip:
                return None
        for known, _ in learnt:
            if known == ip:
                return None
        return outside

    def ports_for(host: str, allow: tuple[Pair, ...]) -> tuple[int | None, ...]:
        """The ports the entries matching an allowed name open (None: any)."""
        return _tuple(p for pattern, p in allow if matches(host, pattern))

    return Rules(
        normalise,
        matches,
        canonical_ip,
        is_local_ip,
        split_entry,
        name_verdict,
        address_verdict,
        reverse_verdict,
        ports_for,
    )


_RULES = _rules()  # for the simulator's side (the egress proxy, admission) and tests
matches = _RULES.matches
canonical_ip = _RULES.canonical_ip
split_entry = _RULES.split_entry


def is_loopback_name(host: str) -> bool:
    """A loopback name or address (``localhost``, ``127.0.0.2``, ``::1``)."""
    host = _RULES.normalise(host)
    ip = canonical_ip(host)
    return host in LOOPBACK_NAMES or (ip is not None and _RULES.is_local_ip(ip))


def reaches_production(entry: str, production: Iterable[str]) -> bool:
    """Whether an ``egress`` entry (``host[:port]``, maybe ``*.``) covers a production host:
    ``api.powerx.io:443`` does, and so does ``*.io``."""
    host, _ = split_entry(entry)
    for pattern in production:
        base = pattern[2:] if pattern.startswith("*.") else pattern
        if matches(host, pattern) or matches(base, host):
            return True
    return False


def _local_addresses(host: str) -> tuple[str, ...]:
    ip = canonical_ip(host)
    if ip is not None:
        return (ip,)
    return ("127.0.0.1", "::1") if _RULES.normalise(host) in LOOPBACK_NAMES else ()


class EgressPolicy:
    """What one plugin may reach; immutable (tuples and frozensets only)."""

    def __init__(
        self, allow: Iterable[str], deny: Iterable[str], simulator: str, proxy: str = ""
    ) -> None:
        self.allow: tuple[Pair, ...] = tuple(split_entry(entry) for entry in allow)
        self.deny: tuple[str, ...] = tuple(_RULES.normalise(d) for d in deny)
        local: set[Pair] = set()
        for endpoint in (simulator, proxy):
            host, port = split_entry(endpoint)
            local |= {(ip, port) for ip in _local_addresses(host) if port is not None}
        for host, port in self.allow:
            if port is not None and is_loopback_name(host):
                local |= {(ip, port) for ip in _local_addresses(host)}
        self.local: frozenset[Pair] = frozenset(local)

    @classmethod
    def from_env(cls, raw: str | None) -> EgressPolicy | None:
        if not raw:
            return None
        data = json.loads(raw)
        return cls(
            data.get("allow", []),
            data.get("deny", []),
            str(data.get("simulator", "")),
            str(data.get("proxy", "")),
        )

    def verdict(self, host: str, port: int) -> Verdict | None:
        """None when ``host:port`` (a name or an address) may be reached, else why not.
        A name's addresses are checked too, with :meth:`learn` and :meth:`address_verdict`."""
        ip = canonical_ip(host)
        if ip is None:
            return _RULES.name_verdict(host, port, self.allow, self.deny)
        return self.address_verdict(ip, port)

    def address_verdict(
        self, ip: str, port: int, learnt: frozenset[Pair] = frozenset()
    ) -> Verdict | None:
        return _RULES.address_verdict(ip, port, self.allow, self.local, learnt)

    def learn(self, host: str, addresses: Iterable[str]) -> frozenset[Pair]:
        """The (address, port) pairs an allowed name's addresses open; loopback never."""
        ports = _RULES.ports_for(host, self.allow)
        ips = {canonical_ip(a) for a in addresses}
        return frozenset(
            (ip, port) for ip in ips if ip and not _RULES.is_local_ip(ip) for port in ports
        )


def _make_hook(policy: EgressPolicy) -> Callable[[str, tuple[Any, ...]], None]:
    """The audit hook. It alone holds (and rebinds) the pairs learnt from lookups; the
    helpers it calls are pure and hold only immutable values, C functions and other
    helpers. No plugin code runs while it does: arguments are read through the exact
    types' own methods, its error is made without calling the (patchable) class, and
    audit hooks a plugin adds later are refused (one would run inside ours, nested in
    the lookups it makes)."""
    rules = _rules()
    name_verdict, address_verdict = rules.name_verdict, rules.address_verdict
    reverse_verdict = rules.reverse_verdict
    canonical, is_local, ports_for = rules.canonical_ip, rules.is_local_ip, rules.ports_for
    matches, normalise = rules.matches, rules.normalise
    allow, deny, local = policy.allow, policy.deny, policy.local
    learnt: frozenset[Pair] = frozenset()
    lock = _thread.allocate_lock()
    getaddrinfo: Callable[..., list[Any]] = _socket.getaddrinfo
    stream = _socket.SOCK_STREAM
    write, quote, prefix = os.write, _json.encode_basestring_ascii, CONTROL_PREFIX
    new_error, set_args, error_class = (
        OSError.__new__,
        BaseException.__dict__["args"].__set__,
        EgressBlocked,
    )
    hosts_in, loopback_names, resolve_event = _HOST_IN_TEXT.match, LOOPBACK_NAMES, RESOLVE_EVENT
    fix_egress, fix_protected = FIX_EGRESS, FIX_PROTECTED
    _type, _str, _int, _bytes, _tuple, _list, _len = type, str, int, bytes, tuple, list, len
    _bytearray, _issubclass, _frozenset, _any = bytearray, issubclass, frozenset, any
    lookups = _frozenset(
        {
            "socket.getaddrinfo",
            "socket.gethostbyname",
            "socket.gethostbyname_ex",
            "socket.gethostbyaddr",
            "socket.getnameinfo",
        }
    )
    reverse = _frozenset({"socket.gethostbyaddr", "socket.getnameinfo"})
    sends = _frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
    children = _frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn"})
    # The way to the hook's functions (and the cells it keeps its state in), and hooks
    # that would run inside it.
    protected = _frozenset(
        {"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook"}
    )
    watched = lookups | sends | children | protected | {resolve_event}
    loopback = ("egress_not_allowed", "a local port other than the simulator's", FIX_LOOPBACK)

    def plain_host(value: object) -> str | None:
        """An exact ``str`` copy of a host argument (a subclass's methods are the
        plugin's code); None when it is no host name (a path, an int, None)."""
        kind = _type(value)
        if kind is _str:
            return value  # type: ignore[return-value]
        if _issubclass(kind, _str):
            return _str.__str__(value)
        if kind is _bytearray:
            return _bytes(value).decode("latin-1")  # type: ignore[call-overload,no-any-return]
        if _issubclass(kind, _bytes):
            return _bytes.__bytes__(value).decode("latin-1")  # type: ignore[arg-type]
        return None

    def plain_int(value: object) -> int | None:
        kind = _type(value)
        if kind is _int:
            return value  # type: ignore[return-value]
        return _int.__int__(value) if _issubclass(kind, _int) else None  # type: ignore[arg-type]

    def refusal(host: str, port: int | None, route: str, verdict: Verdict) -> BaseException:
        reason, meaning, fix = verdict
        fields = (
            ("event", quote("egress_blocked")),
            ("host", quote(host)),
            ("port", "null" if port is None else _str(port)),
            ("route", quote(route)),
            ("reason", quote(reason)),
        )
        line = "{" + ",".join(f'"{name}":{value}' for name, value in fields) + "}"
        try:  # noqa: SIM105 (contextlib is a module the plugin may patch; this runs in the hook)
            write(1, (prefix + line + "\n").encode())
        except OSError:
            pass
        where = f"{host}:{port}" if port is not None else host
        what = f"egress to {where} blocked" if host else f"{route} blocked"
        error = new_error(error_class)
        set_args(error, (f"powerx: {what} ({meaning}); fix: {fix}",))
        return error

    def check_name(host: str, port: int | None, route: str) -> None:
        verdict = name_verdict(host, port, allow, deny)
        if verdict is not None:
            raise refusal(normalise(host), port, route, verdict)

    def check_address(host: str, port: int, route: str, learnt: frozenset[Pair]) -> None:
        ip = canonical(host)
        if ip is not None:
            verdict = address_verdict(ip, port, allow, local, learnt)
            if verdict is not None:
                raise refusal(ip, port, route, verdict)
            return
        # connect((name, port)): the socket looks the name up itself; a loopback name
        # reaches only the simulator's ports, an allowed name never a local address.
        check_name(host, port, route)
        if normalise(host) in loopback_names:
            if ("127.0.0.1", port) in local or ("::1", port) in local:
                return
            raise refusal(normalise(host), port, route, loopback)
        for entry in getaddrinfo(host, port, 0, stream):
            ip = canonical(entry[4][0])
            if ip is not None and is_local(ip) and (ip, port) not in local:
                raise refusal(ip, port, route, loopback)

    def lookup_arguments(args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The guard's getaddrinfo arguments as exact values (TypeError otherwise)."""
        if _len(args) != 7 or _type(args[6]) is not _list:
            raise TypeError("getaddrinfo() was called with unexpected arguments")
        host, port = args[0], args[1]
        host = None if host is None else plain_host(host)
        if port is not None:
            port = plain_int(port) if _issubclass(_type(port), _int) else plain_host(port)
        numbers = _tuple(plain_int(a) for a in args[2:6])
        if (host is None) != (args[0] is None) or (port is None) != (args[1] is None):
            raise TypeError("getaddrinfo() host and port must be str, bytes, int or None")
        if None in numbers:
            raise TypeError("getaddrinfo() family, type, proto and flags must be integers")
        return (host, port, *numbers)

    def opened_by(host: str | None, found: list[Any]) -> frozenset[Pair]:
        """What the addresses of an allowed name open; loopback addresses never."""
        if host is None or canonical(host) is not None:
            return _frozenset()
        ports = ports_for(host, allow)
        ips = {canonical(entry[4][0]) for entry in found}
        return _frozenset(
            (ip, port) for ip in ips if ip is not None and not is_local(ip) for port in ports
        )

    def address_of(args: tuple[Any, ...]) -> tuple[str, object] | None:
        """(host, port) of a connect/sendto/sendmsg; None for a unix path, no address
        (send on a connected socket) or a family without host names (netlink, vsock)."""
        address: Any = args[1] if _len(args) > 1 else None
        if not _issubclass(_type(address), _tuple) or _tuple.__len__(address) < 2:
            return None
        host = plain_host(_tuple.__getitem__(address, 0))
        return None if host is None else (host, _tuple.__getitem__(address, 1))

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal learnt
        if _type(event) is not _str or event not in watched:
            return
        if event == resolve_event:  # from the guard's socket.getaddrinfo
            arguments = lookup_arguments(args)
            if arguments[0] is not None:
                check_name(arguments[0], None, "getaddrinfo")
            found = getaddrinfo(*arguments)
            new = opened_by(arguments[0], found)
            if not new <= learnt:
                with lock:
                    learnt = learnt | new
            _list.extend(args[6], found)
        elif event in sends:
            target = address_of(args)
            if target is None:
                return
            host, raw_port = target
            port = plain_int(raw_port)
            if port is None:
                unreadable = ("egress_not_allowed", "the port is not an int", fix_egress)
                raise refusal(host, None, event, unreadable)
            check_address(host, port, event, learnt)
        elif event in lookups:
            name: Any = args[0] if args else None
            if event == "socket.getnameinfo" and _issubclass(_type(name), _tuple):
                name = _tuple.__getitem__(name, 0) if _tuple.__len__(name) else None
            looked_up = plain_host(name)
            route = event.removeprefix("socket.")
            ip = None if looked_up is None else canonical(looked_up)
            if ip is not None and event in reverse:
                refused = reverse_verdict(ip, allow, learnt)
                if refused is not None:
                    raise refusal(ip, None, route, refused)
            elif looked_up is not None:
                check_name(looked_up, None, route)
        elif event in children:
            argv = args[1] if event != "os.system" else [args[0]]
            values = argv if _type(argv) is _list or _type(argv) is _tuple else [argv]
            for value in values:
                text = plain_host(value) if _type(value) is _str or _type(value) is _bytes else None
                for token in (text or "").lower().split():
                    match = hosts_in(token)
                    host = match.group(1) if match else ""
                    if "." in host and _any(matches(host, pattern) for pattern in deny):
                        check_name(host, None, event)
        else:
            protected_by = (
                "guard_protected",
                f"{event} is not available to plugins",
                fix_protected,
            )
            raise refusal("", None, event, protected_by)

    return hook


def _resolver(audit: Callable[..., None]) -> Callable[..., list[Any]]:
    """``socket.getaddrinfo`` that has the guard's hook look the name up (and learn
    what the answer allows); nothing of the hook is reachable through it."""

    def convert(value: int, kind: Any) -> Any:
        """As socket.getaddrinfo answers: enum members where the number is known."""
        try:
            return kind(value)
        except ValueError:
            return value

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        found: list[Any] = []
        audit(RESOLVE_EVENT, host, port, family, type, proto, flags, found)
        return [
            (
                convert(af, socket.AddressFamily),
                convert(kind, socket.SocketKind),
                number,
                name,
                address,
            )
            for af, kind, number, name, address in found
        ]

    return getaddrinfo


def install(policy: EgressPolicy) -> None:
    """Install the audit hook (once per process; it cannot be removed)."""
    if getattr(sys, _INSTALLED, False):
        return  # installed at start-up by python_child/sitecustomize.py: once is enough
    setattr(sys, _INSTALLED, True)
    sys.addaudithook(_make_hook(policy))
    socket.getaddrinfo = _resolver(sys.audit)


def install_from_env() -> None:
    policy = EgressPolicy.from_env(os.environ.get(POLICY_ENV))
    if policy is not None:
        install(policy)
