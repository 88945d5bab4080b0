'use strict';
// Egress guard for Node plugin processes: the same policy as egress_guard.py.
//
// The decision is made on the final address and port, at the lowest layer JavaScript
// can reach: the TCP and UDP handles' connect/send (every net, tls, http, https, fetch and
// dgram connection ends there, whatever lookup the caller supplied) and the c-ares
// channel's queries and getaddrinfo (dns.lookup, dns.resolve*, Resolver, dns.promises).
// Above that, net.Socket.prototype.connect and dns.lookup check names first, so the
// plugin gets an error naming the host and the fix (POWERX_EGRESS_BLOCKED). Allowed: the
// simulator's host API port and the egress proxy port, on loopback only; loopback ports
// the manifest names (localhost:8080); IP addresses it lists; and (address, port) pairs
// learnt from the resolver's answers for allowed names (never a loopback address).
//
// Plugin code is not trusted. The handles' bindings are taken from process.binding before
// any plugin code runs, and process.binding then refuses them (and the other network,
// process and inspector bindings); the original Worker class is unreachable (workers are
// started with the guard installed first, their own flags refused); an in-process
// inspector session is refused. Builtins the decisions use are captured when this file
// loads, so a plugin that patches String.prototype or Set.prototype changes nothing here.
// child_process calls naming a production host are refused. Node processes the plugin
// starts preload this file through NODE_OPTIONS (egress_preload.js).
//
// Policy: POWERX_EGRESS = {"allow": ["host", "host:port"], "deny": [...], "simulator":
// "host:port", "proxy": "host:port"}. The hooks may go in before the policy is known (a
// warm spare); the policy is set once, before plugin code runs, and cannot be changed.
const net = require('node:net');
const dns = require('node:dns');
const os = require('node:os');
const childProcess = require('node:child_process');
const path = require('node:path');
const url = require('node:url');
const workerThreads = require('node:worker_threads');
const builtinModules = require('node:module');

// -- builtins, captured before plugin code runs ---------------------------------------
const { apply: ReflectApply, construct: ReflectConstruct } = Reflect;
const uncurry = (fn) => ReflectApply(Function.prototype.bind, Function.prototype.call, [fn]);
const StringCtor = String;
const NumberCtor = Number;
const ErrorCtor = Error;
const TypeErrorCtor = TypeError;
const SetCtor = Set;
const MapCtor = Map;
const ArrayIsArray = Array.isArray;
const ObjectAssign = Object.assign;
const ObjectDefineProperty = Object.defineProperty;
const ObjectGetPrototypeOf = Object.getPrototypeOf;
const ObjectSetPrototypeOf = Object.setPrototypeOf;
const ObjectHasOwn = Object.hasOwn;
const JSONStringify = JSON.stringify;
const JSONParse = JSON.parse;
const StringToLowerCase = uncurry(String.prototype.toLowerCase);
const StringTrim = uncurry(String.prototype.trim);
const StringSlice = uncurry(String.prototype.slice);
const StringStartsWith = uncurry(String.prototype.startsWith);
const StringEndsWith = uncurry(String.prototype.endsWith);
const StringIndexOf = uncurry(String.prototype.indexOf);
const StringLastIndexOf = uncurry(String.prototype.lastIndexOf);
const StringSplit = uncurry(String.prototype.split);
const StringCharCodeAt = uncurry(String.prototype.charCodeAt);
const ArrayPush = uncurry(Array.prototype.push);
const ArrayJoin = uncurry(Array.prototype.join);
const SetHas = uncurry(Set.prototype.has);
const SetAdd = uncurry(Set.prototype.add);
const MapGet = uncurry(Map.prototype.get);
const MapSet = uncurry(Map.prototype.set);
const RegExpExec = uncurry(RegExp.prototype.exec);
const NumberToString = uncurry(Number.prototype.toString);
const { isIP, isIPv4, isIPv6 } = net;
const nextTick = process.nextTick;
const normalizeArgs = net._normalizeArgs;
const stdout = process.stdout;
const stdoutWrite = stdout.write;
const UV_EACCES = -os.constants.errno.EACCES;
const parentExecArgv = process.execArgv.slice();
const originalBinding = process.binding;

const CONTROL_PREFIX = '@@powerx ';
const FIX_PRODUCTION = 'plugins in the simulator must not call production PowerX; use the mock ' +
  'host API through POWERX_HOST_URL (env.host does)';
const FIX_EGRESS = 'add the host to `egress` in plugin.yaml, or call it through the host API';
const FIX_LOOPBACK = "a plugin reaches the simulator only on its host API port; name another " +
  'local service with its port in `egress` (localhost:8080)';
const FIX_PROTECTED = 'plugins cannot reach the runtime below the guard; debug with `powerx debug`';
const LOOPBACK_NAMES = new SetCtor(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);
const PRODUCTION = ['production_host', 'production PowerX API', FIX_PRODUCTION];
const OUTSIDE = ['egress_not_allowed', "not in the manifest's egress list", FIX_EGRESS];
const LOOPBACK = ['egress_not_allowed', "a local port other than the simulator's", FIX_LOOPBACK];
const PROTECTED = ['guard_protected', 'not available to plugins', FIX_PROTECTED];
// Bindings that would reach the network, processes or the inspector without the guard.
const PROTECTED_BINDINGS = new SetCtor([
  'tcp_wrap', 'udp_wrap', 'cares_wrap', 'pipe_wrap', 'stream_wrap', 'tls_wrap', 'js_stream',
  'process_wrap', 'spawn_sync', 'inspector',
]);
const INSTALLED = Symbol.for('powerx.egress_guard');

// -- the policy --------------------------------------------------------------------------

function normalise(host) {
  let text = StringToLowerCase(StringTrim(StringCtor(host === undefined || host === null ? '' : host)));
  if (StringStartsWith(text, '[') && StringEndsWith(text, ']')) text = StringSlice(text, 1, -1);
  while (StringEndsWith(text, '.')) text = StringSlice(text, 0, -1);
  return text;
}

function matches(host, pattern) {
  host = normalise(host);
  pattern = normalise(pattern);
  if (StringStartsWith(pattern, '*.')) {
    return StringEndsWith(host, StringSlice(pattern, 1)) || host === StringSlice(pattern, 2);
  }
  return host === pattern;
}

function isAscii(text) {
  for (let i = 0; i < text.length; i++) if (StringCharCodeAt(text, i) > 127) return false;
  return true;
}

function hexGroup(text) {
  // One IPv6 group as a number, or -1.
  if (text.length === 0 || text.length > 4) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const code = StringCharCodeAt(text, i);
    const digit = code >= 48 && code <= 57 ? code - 48 : code >= 97 && code <= 102 ? code - 87 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

function ipv6Groups(text) {
  // The eight groups of a valid IPv6 address (isIPv6 checked it), embedded IPv4 included.
  const groups = [];
  const halves = StringSplit(text, '::');
  const parse = (part) => {
    const out = [];
    if (part === '') return out;
    const pieces = StringSplit(part, ':');
    for (let i = 0; i < pieces.length; i++) {
      if (i === pieces.length - 1 && StringIndexOf(pieces[i], '.') >= 0) {
        const octets = StringSplit(pieces[i], '.');
        ArrayPush(out, NumberCtor(octets[0]) * 256 + NumberCtor(octets[1]));
        ArrayPush(out, NumberCtor(octets[2]) * 256 + NumberCtor(octets[3]));
      } else {
        ArrayPush(out, hexGroup(pieces[i]));
      }
    }
    return out;
  };
  const head = parse(halves[0]);
  const tail = halves.length > 1 ? parse(halves[1]) : [];
  for (let i = 0; i < head.length; i++) ArrayPush(groups, head[i]);
  for (let i = head.length + tail.length; i < 8; i++) ArrayPush(groups, 0);
  for (let i = 0; i < tail.length; i++) ArrayPush(groups, tail[i]);
  return groups;
}

function canonicalIp(text) {
  // The address in one canonical form (IPv4-mapped IPv6 as IPv4), or null for a name.
  // Strict, as the Python guard: '127.1' and '0x7f000001' are names (and so refused).
  if (typeof text !== 'string') return null;
  let address = StringTrim(text);
  if (StringStartsWith(address, '[') && StringEndsWith(address, ']')) address = StringSlice(address, 1, -1);
  const zone = StringIndexOf(address, '%');
  if (zone >= 0) address = StringSlice(address, 0, zone);
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return null;
  const groups = ipv6Groups(StringToLowerCase(address));
  if (groups.length !== 8) return null;
  for (let i = 0; i < 8; i++) if (groups[i] < 0 || groups[i] > 0xffff) return null;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 &&
      groups[4] === 0 && groups[5] === 0xffff) {
    const dotted = [groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255];
    return ArrayJoin(dotted, '.');
  }
  // RFC 5952: the longest run of two or more zero groups becomes '::'.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hex = [];
  for (let i = 0; i < 8; i++) ArrayPush(hex, NumberToString(groups[i], 16));
  if (bestStart < 0) return ArrayJoin(hex, ':');
  const before = [];
  const after = [];
  for (let i = 0; i < bestStart; i++) ArrayPush(before, hex[i]);
  for (let i = bestStart + bestLength; i < 8; i++) ArrayPush(after, hex[i]);
  return `${ArrayJoin(before, ':')}::${ArrayJoin(after, ':')}`;
}

function isLocalIp(ip) {
  // Loopback or unspecified (connecting to 0.0.0.0 reaches this machine too).
  return StringStartsWith(ip, '127.') || ip === '0.0.0.0' || ip === '::1' || ip === '::';
}

function splitEntry(entry) {
  // 'host:443' -> ['host', 443]; 'host' -> ['host', null].
  const text = StringCtor(entry);
  const colon = StringLastIndexOf(text, ':');
  if (colon > 0 && StringIndexOf(text, ':') === colon) {
    const port = StringSlice(text, colon + 1);
    const number = NumberCtor(port);
    if (port !== '' && number === (number | 0) && number > 0 && number < 65536) {
      return [normalise(StringSlice(text, 0, colon)), number];
    }
  }
  return [normalise(text), null];
}

function localAddresses(host) {
  const ip = canonicalIp(host);
  if (ip !== null) return [ip];
  return SetHas(LOOPBACK_NAMES, normalise(host)) ? ['127.0.0.1', '::1'] : [];
}

const pairKey = (ip, port) => `${ip}|${port === null ? '*' : port}`;

// The policy the hooks apply; null: none given (no POWERX_EGRESS), so nothing is checked.
let current = null;

function compilePolicy(policy) {
  const allow = [];
  const local = new SetCtor();
  const entries = ArrayIsArray(policy.allow) ? policy.allow : [];
  for (let i = 0; i < entries.length; i++) ArrayPush(allow, splitEntry(entries[i]));
  const endpoints = [StringCtor(policy.simulator || ''), StringCtor(policy.proxy || '')];
  for (let i = 0; i < endpoints.length; i++) {
    const [host, port] = splitEntry(endpoints[i]);
    const ips = localAddresses(host);
    for (let j = 0; port !== null && j < ips.length; j++) SetAdd(local, pairKey(ips[j], port));
  }
  for (let i = 0; i < allow.length; i++) {
    const host = allow[i][0];
    const port = allow[i][1];
    const ip = canonicalIp(host);
    if (port !== null && (SetHas(LOOPBACK_NAMES, host) || (ip !== null && isLocalIp(ip)))) {
      const ips = localAddresses(host);
      for (let j = 0; j < ips.length; j++) SetAdd(local, pairKey(ips[j], port));
    }
  }
  const deny = [];
  const patterns = ArrayIsArray(policy.deny) ? policy.deny : [];
  for (let i = 0; i < patterns.length; i++) ArrayPush(deny, normalise(patterns[i]));
  return { source: policy, allow, deny, local, learnt: new MapCtor() };
}

function setPolicy(policy) {
  if (current !== null) return; // set once: code that runs later cannot widen it
  current = compilePolicy(policy);
}

function nameVerdict(host, port, policy = current) {
  // May this name be looked up (port null) or connected to by name?
  host = normalise(host);
  if (!isAscii(host)) return OUTSIDE; // only IDNA (xn--) names can match an entry
  for (let i = 0; i < policy.deny.length; i++) {
    if (matches(host, policy.deny[i])) return PRODUCTION;
  }
  if (canonicalIp(host) !== null || SetHas(LOOPBACK_NAMES, host)) return null;
  for (let i = 0; i < policy.allow.length; i++) {
    const allowedPort = policy.allow[i][1];
    if (matches(host, policy.allow[i][0]) && (port === null || allowedPort === null || allowedPort === port)) {
      return null;
    }
  }
  return OUTSIDE;
}

function addressVerdict(ip, port, policy = current) {
  // May a connection go to this canonical address and port?
  if (SetHas(policy.local, pairKey(ip, port))) return null;
  if (isLocalIp(ip)) return LOOPBACK;
  for (let i = 0; i < policy.allow.length; i++) {
    const allowedPort = policy.allow[i][1];
    if (policy.allow[i][0] === ip && (allowedPort === null || allowedPort === port)) return null;
  }
  const ports = MapGet(policy.learnt, ip);
  if (ports !== undefined && (SetHas(ports, '*') || SetHas(ports, port))) return null;
  return OUTSIDE;
}

function reverseVerdict(ip, policy = current) {
  // May this address be looked up in reverse (a query its reverse zone's server sees)?
  if (isLocalIp(ip) || MapGet(policy.learnt, ip) !== undefined) return null;
  for (let i = 0; i < policy.allow.length; i++) if (policy.allow[i][0] === ip) return null;
  return OUTSIDE;
}

function learn(hostname, addresses, policy = current) {
  // The resolver's answer for an allowed name opens its addresses (never loopback ones) on
  // the ports the matching entries name.
  if (policy === null || typeof hostname !== 'string' || canonicalIp(hostname) !== null) return;
  const host = normalise(hostname);
  const ports = [];
  for (let i = 0; i < policy.allow.length; i++) {
    if (matches(host, policy.allow[i][0])) ArrayPush(ports, policy.allow[i][1] === null ? '*' : policy.allow[i][1]);
  }
  if (ports.length === 0 || !ArrayIsArray(addresses)) return;
  for (let i = 0; i < addresses.length; i++) {
    const entry = addresses[i];
    const ip = canonicalIp(typeof entry === 'string' ? entry : entry && entry.address);
    if (ip === null || isLocalIp(ip)) continue;
    let known = MapGet(policy.learnt, ip);
    if (known === undefined) {
      known = new SetCtor();
      MapSet(policy.learnt, ip, known);
    }
    for (let j = 0; j < ports.length; j++) SetAdd(known, ports[j]);
  }
}

function blocked(host, port, route, verdict) {
  // Report a refusal to the simulator and make the error the plugin gets.
  const [reason, meaning, fix] = verdict;
  const line = JSONStringify({ event: 'egress_blocked', host, port, route, reason });
  try {
    ReflectApply(stdoutWrite, stdout, [`${CONTROL_PREFIX}${line}\n`]);
  } catch {
    // the report is best effort; the refusal is not
  }
  const where = port === null ? host : `${host}:${port}`;
  const what = host === '' ? `${route} blocked` : `egress to ${where} blocked`;
  const error = new ErrorCtor(`powerx: ${what} (${meaning}); fix: ${fix}`);
  ObjectDefineProperty(error, 'code', { value: 'POWERX_EGRESS_BLOCKED', enumerable: true });
  return error;
}

function portNumber(port) {
  if (typeof port !== 'number' && typeof port !== 'string') return null;
  const number = NumberCtor(port);
  return number === (number | 0) ? number : null;
}

// -- the lowest layer: handles and the resolver ------------------------------------------

function bindingOf(name) {
  try {
    return ReflectApply(originalBinding, process, [name]);
  } catch {
    return null;
  }
}

function replaceMethod(target, name, make) {
  const original = target && target[name];
  if (typeof original !== 'function') return;
  const replacement = make(original);
  ObjectDefineProperty(replacement, 'name', { value: name });
  target[name] = replacement;
}

function guardHandles() {
  // TCP connect, UDP send/connect: the address and port a socket really uses.
  const tcp = bindingOf('tcp_wrap');
  for (const name of ['connect', 'connect6']) {
    replaceMethod(tcp && tcp.TCP.prototype, name, (original) => function (req, address, port) {
      if (current !== null) {
        const ip = canonicalIp(address);
        const verdict = ip === null ? OUTSIDE : addressVerdict(ip, port);
        if (verdict !== null) {
          blocked(ip === null ? '?' : ip, typeof port === 'number' ? port : null, 'tcp', verdict);
          return UV_EACCES; // net reports "connect EACCES address:port"
        }
      }
      return ReflectApply(original, this, [req, address, port]);
    });
  }
  const udp = bindingOf('udp_wrap');
  for (const name of ['send', 'send6']) {
    replaceMethod(udp && udp.UDP.prototype, name, (original) => function (...args) {
      // (req, list, count, port, address, hasCallback), or without port and address on a
      // connected socket (checked when it connected).
      if (current !== null && args.length >= 6) {
        const ip = canonicalIp(args[4]);
        const verdict = ip === null ? OUTSIDE : addressVerdict(ip, args[3]);
        if (verdict !== null) {
          blocked(ip === null ? '?' : ip, typeof args[3] === 'number' ? args[3] : null, 'udp', verdict);
          return UV_EACCES;
        }
      }
      return ReflectApply(original, this, args);
    });
  }
  for (const name of ['connect', 'connect6']) {
    replaceMethod(udp && udp.UDP.prototype, name, (original) => function (address, port) {
      if (current !== null) {
        const ip = canonicalIp(address);
        const verdict = ip === null ? OUTSIDE : addressVerdict(ip, port);
        if (verdict !== null) {
          blocked(ip === null ? '?' : ip, typeof port === 'number' ? port : null, 'udp', verdict);
          return UV_EACCES;
        }
      }
      return ReflectApply(original, this, [address, port]);
    });
  }
}

function guardResolver() {
  // c-ares: getaddrinfo (dns.lookup and dns.promises.lookup, which learn from its answer),
  // getnameinfo (lookupService), and every query of dns.resolve*/Resolver.
  const cares = bindingOf('cares_wrap');
  if (cares === null) return;
  replaceMethod(cares, 'getaddrinfo', (original) => function (req, hostname, ...rest) {
    if (current !== null) {
      const verdict = nameVerdict(hostname, null);
      if (verdict !== null) {
        blocked(normalise(hostname), null, 'dns.lookup', verdict);
        return UV_EACCES;
      }
      const oncomplete = req.oncomplete;
      req.oncomplete = function (err, addresses) {
        if (!err) learn(hostname, addresses);
        return ReflectApply(oncomplete, this, [err, addresses]);
      };
    }
    return ReflectApply(original, this, [req, hostname, ...rest]);
  });
  replaceMethod(cares, 'getnameinfo', (original) => function (req, address, port) {
    if (current !== null) {
      const ip = canonicalIp(address);
      const verdict = ip === null ? OUTSIDE : reverseVerdict(ip);
      if (verdict !== null) {
        blocked(ip === null ? '?' : ip, null, 'dns.lookupService', verdict);
        return UV_EACCES;
      }
    }
    return ReflectApply(original, this, [req, address, port]);
  });
  const channel = cares.ChannelWrap.prototype;
  const names = Object.getOwnPropertyNames(channel);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (!StringStartsWith(name, 'query') && name !== 'getHostByAddr') continue;
    // Thrown: dns.resolve*() then throws it, and a dns.promises resolver rejects with it.
    replaceMethod(channel, name, (original) => function (req, hostname) {
      if (current !== null) {
        const ip = name === 'getHostByAddr' ? canonicalIp(hostname) : null;
        const verdict = ip !== null ? reverseVerdict(ip) : nameVerdict(hostname, null);
        if (verdict !== null) {
          throw blocked(ip === null ? normalise(hostname) : ip, null, `dns.${name}`, verdict);
        }
      }
      return ReflectApply(original, this, [req, hostname]);
    });
  }
  // Other DNS servers would answer for allowed names with any address (and see every
  // query): the plugin keeps the machine's.
  replaceMethod(channel, 'setServers', (original) => function (...args) {
    if (current !== null) throw blocked('', null, 'dns.setServers', PROTECTED);
    return ReflectApply(original, this, args);
  });
}

function guardBindings() {
  // What is wrapped above could be reached around the wrappers through the bindings.
  process.binding = function binding(name) {
    const key = typeof name === 'string' ? name : StringCtor(name);
    if (current !== null && SetHas(PROTECTED_BINDINGS, key)) {
      throw blocked('', null, `process.binding('${key}')`, PROTECTED);
    }
    return ReflectApply(originalBinding, process, [key]);
  };
}

function guardInspector() {
  // An inspector session can pause this thread and rewrite the guard's state.
  let inspector;
  try {
    inspector = require('node:inspector');
  } catch {
    return; // a Node built without the inspector
  }
  for (const name of ['connect', 'connectToMainThread']) {
    replaceMethod(inspector.Session.prototype, name, (original) => function (...args) {
      if (current !== null) throw blocked('', null, `inspector.Session.${name}`, PROTECTED);
      return ReflectApply(original, this, args);
    });
  }
}

// -- net and dns: names first, with the fix in the message -------------------------------

const NET_OPTIONS = [
  'host', 'port', 'path', 'lookup', 'family', 'hints', 'localAddress', 'localPort',
  'autoSelectFamily', 'autoSelectFamilyAttemptTimeout',
];

function checkedLookup(host, port, lookup) {
  // The caller's lookup (or dns.lookup), its answer checked before net connects to it: a
  // custom lookup may map an allowed name to any address.
  return function lookupThenCheck(hostname, options, callback) {
    const deliver = (err, address, family) => {
      if (err) {
        callback(err, address, family);
        return;
      }
      if (ArrayIsArray(address)) {
        const allowed = [];
        let first = null;
        for (let i = 0; i < address.length; i++) {
          const entry = address[i];
          const found = entry && entry.address;
          const foundFamily = entry && entry.family;
          const ip = canonicalIp(found);
          const verdict = ip === null ? OUTSIDE : addressVerdict(ip, port);
          if (verdict === null) ArrayPush(allowed, { address: found, family: foundFamily });
          else if (first === null) first = [ip === null ? host : ip, verdict];
        }
        if (allowed.length === 0 && first !== null) callback(blocked(first[0], port, 'net.connect', first[1]));
        else callback(null, allowed);
        return;
      }
      const ip = canonicalIp(address);
      const verdict = ip === null ? OUTSIDE : addressVerdict(ip, port);
      if (verdict !== null) callback(blocked(ip === null ? host : ip, port, 'net.connect', verdict));
      else callback(null, address, family);
    };
    return ReflectApply(lookup, this, [hostname, options, deliver]);
  };
}

function refuse(socket, error) {
  // As a connection error: 'error' on the socket, once the caller has listened for it.
  ReflectApply(nextTick, process, [() => socket.destroy(error)]);
  return socket;
}

function guardNet(guardedLookup) {
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(...args) {
    if (current === null) return ReflectApply(connect, this, args);
    const normalized = ArrayIsArray(args[0]) ? args[0] : normalizeArgs(args);
    const given = normalized[0];
    const callback = normalized[1];
    // Read once into a plain copy: a getter could answer the check and net differently.
    const options = ObjectAssign({ __proto__: null }, given);
    for (let i = 0; i < NET_OPTIONS.length; i++) {
      const key = NET_OPTIONS[i];
      if (!ObjectHasOwn(options, key) && given !== null && typeof given === 'object') {
        const value = given[key];
        if (value !== undefined) options[key] = value;
      }
    }
    const pass = () => ReflectApply(connect, this, typeof callback === 'function' ? [options, callback] : [options]);
    if (options.path !== undefined && options.path !== null && options.path !== '') {
      return pass(); // a unix socket: local IPC, not the network (net checks the type)
    }
    const host = options.host === undefined || options.host === null || options.host === '' ? 'localhost' : options.host;
    if (typeof host !== 'string') throw new TypeErrorCtor('The "options.host" property must be of type string');
    options.host = host;
    const port = portNumber(options.port);
    const ip = canonicalIp(host);
    const verdict = ip !== null ? addressVerdict(ip, port) : nameVerdict(host, port);
    if (verdict !== null) return refuse(this, blocked(ip === null ? normalise(host) : ip, port, 'net.connect', verdict));
    if (ip === null) {
      const lookup = typeof options.lookup === 'function' ? options.lookup : guardedLookup;
      options.lookup = checkedLookup(normalise(host), port, lookup);
    }
    return pass();
  };
}

function guardDns() {
  const lookup = dns.lookup;
  const guardedLookup = function lookupGuarded(hostname, options, callback) {
    const done = typeof options === 'function' ? options : callback;
    if (current === null || typeof hostname !== 'string' || hostname === '' || typeof done !== 'function') {
      return ReflectApply(lookup, dns, typeof options === 'function' ? [hostname, options] : [hostname, options, callback]);
    }
    const verdict = nameVerdict(hostname, null);
    if (verdict !== null) {
      ReflectApply(nextTick, process, [done, blocked(normalise(hostname), null, 'dns.lookup', verdict)]);
      return {};
    }
    return typeof options === 'function' ? ReflectApply(lookup, dns, [hostname, done]) : ReflectApply(lookup, dns, [hostname, options, done]);
  };
  dns.lookup = guardedLookup;
  const promisesLookup = dns.promises.lookup;
  dns.promises.lookup = async function lookupGuarded(hostname, options) {
    if (current !== null && typeof hostname === 'string' && hostname !== '') {
      const verdict = nameVerdict(hostname, null);
      if (verdict !== null) throw blocked(normalise(hostname), null, 'dns.lookup', verdict);
    }
    return ReflectApply(promisesLookup, dns.promises, [hostname, options]);
  };
  return guardedLookup;
}

// -- child processes and workers -----------------------------------------------------------

const HOST_IN_TEXT = /(?:[a-z][a-z0-9+.-]*:\/\/)?(?:[^\s/@:]+(?::[^\s/@]*)?@)?([a-z0-9.-]+)/;

function checkCommand(args, route) {
  if (current === null) return;
  for (let i = 0; i < args.length; i++) {
    const values = ArrayIsArray(args[i]) ? args[i] : [args[i]];
    for (let j = 0; j < values.length; j++) {
      if (typeof values[j] !== 'string') continue;
      const tokens = StringSplit(StringToLowerCase(values[j]), /\s+/);
      for (let k = 0; k < tokens.length; k++) {
        const match = RegExpExec(HOST_IN_TEXT, tokens[k]);
        const host = match ? match[1] : '';
        if (StringIndexOf(host, '.') < 0) continue;
        for (let d = 0; d < current.deny.length; d++) {
          if (matches(host, current.deny[d])) throw blocked(host, null, route, PRODUCTION);
        }
      }
    }
  }
}

function guardChildren() {
  for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
    const original = childProcess[name];
    childProcess[name] = function guardedChild(...args) {
      checkCommand(args, `child_process.${name}`);
      return ReflectApply(original, this, args);
    };
  }
}

// What a guarded worker runs after the guard: the caller's code (evaluated as a script of
// its own, so its declarations cannot shadow the prelude's `require`), or its file, by
// require() or, for ES modules, import().
function workerBody(target, options) {
  if (options && options.eval) {
    return `require('node:vm').runInThisContext(${JSONStringify(StringCtor(target))}, ` +
      "{ filename: '[worker eval]' });";
  }
  const href = StringCtor(target instanceof URL ? target.href : target);
  if (!StringStartsWith(href, 'file:') && RegExpExec(/^[a-z][a-z0-9+.-]*:/i, href)) {
    return `import(${JSONStringify(href)});`; // data: and other URLs
  }
  const file = JSONStringify(StringStartsWith(href, 'file:') ? url.fileURLToPath(href) : path.resolve(href));
  return `try { require(${file}); } catch (error) {
  if (error.code !== 'ERR_REQUIRE_ESM') throw error;
  import(require('node:url').pathToFileURL(${file}).href);
}`;
}

function guardWorkers() {
  const Original = workerThreads.Worker;
  // Not a subclass: the original class would be its prototype, one step away.
  function Worker(target, options) {
    if (new.target === undefined) throw new TypeErrorCtor("Class constructor Worker cannot be invoked without 'new'");
    if (current === null) return ReflectConstruct(Original, [target, options], new.target);
    const guard = JSONStringify(current.source);
    const prelude = `require(${JSONStringify(__filename)}).install(${guard});\n`;
    // The worker's own flags could expose Node's internals (and the original class).
    const settings = { ...options, eval: true, execArgv: parentExecArgv.slice() };
    return ReflectConstruct(Original, [prelude + workerBody(target, options), settings], new.target);
  }
  Worker.prototype = Original.prototype;
  ObjectDefineProperty(Original.prototype, 'constructor', { value: Worker, writable: true, configurable: true });
  ObjectSetPrototypeOf(Worker, ObjectGetPrototypeOf(Original));
  workerThreads.Worker = Worker;
  builtinModules.syncBuiltinESMExports(); // `import { Worker }` gets this one too
}

// -- installing ----------------------------------------------------------------------------

function warmDecisions() {
  // V8 compiles a function when it is first called: run what a generation's policy and
  // first connections need on a throwaway policy, so a warm spare pays for it, not the
  // reload (~0.3 ms).
  const policy = compilePolicy({
    allow: ['a.example', 'localhost:2', '10.0.0.1:3'], deny: ['*.b.example'],
    simulator: '127.0.0.1:4', proxy: '127.0.0.1:5',
  });
  nameVerdict('c.a.example', null, policy);
  nameVerdict('localhost', 4, policy);
  addressVerdict(canonicalIp('127.0.0.1'), 4, policy);
  addressVerdict(canonicalIp('::ffff:10.0.0.1'), 3, policy);
  learn('a.example', [{ address: '10.0.0.9', family: 4 }], policy);
}

function installHooks() {
  // A warm spare does this before it is given a plugin (~1 ms), with no policy yet: no
  // plugin code runs before the policy is set.
  if (globalThis[INSTALLED]) return; // preloaded already: wrapping twice would count twice
  globalThis[INSTALLED] = true;
  warmDecisions();
  guardHandles();
  guardResolver(); // before dns.promises loads: it keeps the binding's getaddrinfo it finds
  const guardedLookup = guardDns();
  guardNet(guardedLookup);
  guardChildren();
  guardWorkers();
  guardInspector();
  guardBindings();
}

function install(policy) {
  setPolicy(policy);
  installHooks();
}

function installFromEnv() {
  const raw = process.env.POWERX_EGRESS;
  if (!raw) return;
  const flags = `${ArrayJoin(parentExecArgv, ' ')} ${process.env.NODE_OPTIONS || ''}`;
  if (StringIndexOf(flags, '--expose-internals') >= 0 || StringIndexOf(flags, '--expose_internals') >= 0) {
    // Node's internals hold the original bindings and Worker class: not in a plugin.
    throw blocked('', null, 'node --expose-internals', PROTECTED);
  }
  install(JSONParse(raw));
}

module.exports = { install, installHooks, installFromEnv, matches, canonicalIp };
