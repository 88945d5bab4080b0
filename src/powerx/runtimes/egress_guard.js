'use strict';
// Egress guard for Node plugin processes: the same policy as egress_guard.py.
// Every outbound TCP connection in Node (net, tls, http, https, fetch/undici) goes through
// net.Socket.prototype.connect, and every name lookup through dns; both are wrapped before
// the plugin's bundle loads. child_process calls naming a production host are refused.
// A worker thread has its own module instances, so each Worker is started with the same
// guard installed first (the policy is passed in its code, not through its env). Node
// processes the plugin starts preload it through NODE_OPTIONS (egress_preload.js).
// Policy: POWERX_EGRESS = {"allow": [...], "deny": [...], "simulator": "host:port",
// "proxy": "host:port"}. The hooks may go in before the policy is known (a warm spare);
// the policy is set once, before plugin code runs, and cannot be changed after.
const net = require('node:net');
const dns = require('node:dns');
const childProcess = require('node:child_process');
const path = require('node:path');
const url = require('node:url');
const workerThreads = require('node:worker_threads');

const CONTROL_PREFIX = '@@powerx ';
const FIX_PRODUCTION = 'plugins in the simulator must not call production PowerX; use the mock ' +
  'host API through POWERX_HOST_URL (env.host does)';
const FIX_EGRESS = 'add the host to `egress` in powerx.plugin.yaml, or call it through the host API';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', 'localhost.localdomain', 'ip6-localhost']);

function normalise(host) {
  return String(host || '').trim().replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

function matches(host, pattern) {
  host = normalise(host);
  pattern = normalise(pattern);
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) || host === pattern.slice(2);
  return host === pattern;
}

const INSTALLED = Symbol.for('powerx.egress_guard');

// The policy the hooks apply; null: none given (no POWERX_EGRESS), so nothing is checked.
let current = null;

function setPolicy(policy) {
  if (current !== null) return; // set once: code that runs later cannot widen it
  const simulator = String(policy.simulator || '');
  const split = simulator.lastIndexOf(':');
  current = {
    source: policy,
    allow: (policy.allow || []).map(normalise),
    deny: (policy.deny || []).map(normalise),
    simHost: normalise(simulator.slice(0, split)),
    simPort: Number(simulator.slice(split + 1)),
    // The simulator's egress proxy (on loopback) checks what passes through it.
    proxyPort: Number(String(policy.proxy || '').split(':').pop()) || null,
    resolved: new Set(),
  };
}

function verdict(host, port) {
  const { allow, deny, simHost, simPort, proxyPort, resolved } = current;
  host = normalise(host);
  if (deny.some((p) => matches(host, p))) {
    return ['production_host', 'production PowerX API', FIX_PRODUCTION];
  }
  const atSimulator = host === simHost || LOOPBACK.has(host) || host.startsWith('127.');
  const localPort = port === undefined || Number(port) === simPort || Number(port) === proxyPort;
  if (atSimulator && localPort) return null;
  if (resolved.has(host) || allow.some((p) => matches(host, p))) return null;
  return ['egress_not_allowed', "not in the manifest's egress list", FIX_EGRESS];
}

function check(host, port, route) {
  if (current === null) return;
  const found = verdict(host, port);
  if (!found) return;
  const [reason, meaning, fix] = found;
  process.stdout.write(CONTROL_PREFIX + JSON.stringify({
    event: 'egress_blocked', host: normalise(host), port: port === undefined ? null : Number(port),
    route, reason,
  }) + '\n');
  const where = port === undefined ? host : `${host}:${port}`;
  const error = new Error(`powerx: egress to ${where} blocked (${meaning}); fix: ${fix}`);
  error.code = 'POWERX_EGRESS_BLOCKED';
  throw error;
}

function remember(address) {
  if (current !== null) current.resolved.add(normalise(address));
}

function installHooks() {
  // Wraps what every connection, name lookup and child process goes through. A warm
  // spare does this before it is given a plugin (it costs ~0.3 ms), with no policy yet:
  // no plugin code runs before the policy is set.
  if (globalThis[INSTALLED]) return; // preloaded already: wrapping twice would count twice
  globalThis[INSTALLED] = true;

  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(...args) {
    let options = args[0];
    if (Array.isArray(options)) options = options[0]; // internal normalized form
    if (options && typeof options === 'object') {
      if (options.path === undefined) check(options.host || 'localhost', options.port, 'net.connect');
    } else if (typeof options === 'number' || (typeof options === 'string' && /^\d+$/.test(options))) {
      check(typeof args[1] === 'string' ? args[1] : 'localhost', Number(options), 'net.connect');
    }
    return connect.apply(this, args);
  };

  const lookup = dns.lookup;
  dns.lookup = function guardedLookup(hostname, options, callback) {
    const done = typeof options === 'function' ? options : callback;
    try {
      check(hostname, undefined, 'dns.lookup');
    } catch (error) {
      if (typeof done === 'function') { process.nextTick(done, error); return {}; }
      throw error;
    }
    const remembered = (err, address, family) => {
      if (!err) {
        for (const entry of Array.isArray(address) ? address : [{ address }]) remember(entry.address);
      }
      done(err, address, family);
    };
    return typeof options === 'function'
      ? lookup.call(dns, hostname, remembered)
      : lookup.call(dns, hostname, options, remembered);
  };
  const promisesLookup = dns.promises.lookup;
  dns.promises.lookup = async function guardedPromisesLookup(hostname, options) {
    check(hostname, undefined, 'dns.lookup');
    const result = await promisesLookup.call(dns.promises, hostname, options);
    for (const entry of Array.isArray(result) ? result : [result]) remember(entry.address);
    return result;
  };

  const HOST_IN_TEXT = /(?:[a-z][a-z0-9+.-]*:\/\/)?(?:[^\s/@:]+(?::[^\s/@]*)?@)?([a-z0-9.-]+)/;
  function checkCommand(args, route) {
    if (current === null) return;
    for (const arg of args.flat()) {
      if (typeof arg !== 'string') continue;
      for (const token of arg.toLowerCase().split(/\s+/)) {
        const match = HOST_IN_TEXT.exec(token);
        if (match && match[1].includes('.') && current.deny.some((p) => matches(match[1], p))) {
          check(match[1], undefined, route);
        }
      }
    }
  }
  for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
    const original = childProcess[name];
    childProcess[name] = function guardedChild(...args) {
      checkCommand(args.filter((a) => typeof a === 'string' || Array.isArray(a)), `child_process.${name}`);
      return original.apply(this, args);
    };
  }

  guardWorkers();
}

function install(policy) {
  setPolicy(policy);
  installHooks();
}

// What a guarded worker runs after the guard: the caller's code (eval), or its file, by
// require() or, for ES modules, import().
function workerBody(target, options) {
  if (options && options.eval) return String(target);
  const href = String(target instanceof URL ? target.href : target);
  if (!href.startsWith('file:') && /^[a-z][a-z0-9+.-]*:/i.test(href)) {
    return `import(${JSON.stringify(href)});`; // data: and other URLs
  }
  const file = JSON.stringify(href.startsWith('file:') ? url.fileURLToPath(href) : path.resolve(href));
  return `try { require(${file}); } catch (error) {
  if (error.code !== 'ERR_REQUIRE_ESM') throw error;
  import(require('node:url').pathToFileURL(${file}).href);
}`;
}

function guardWorkers() {
  const Original = workerThreads.Worker;
  workerThreads.Worker = class GuardedWorker extends Original {
    constructor(target, options = {}) {
      if (current === null) {
        super(target, options);
        return;
      }
      const guard = JSON.stringify(current.source);
      const prelude = `require(${JSON.stringify(__filename)}).install(${guard});\n`;
      super(prelude + workerBody(target, options), { ...options, eval: true });
    }
  };
}

function installFromEnv() {
  const raw = process.env.POWERX_EGRESS;
  if (raw) install(JSON.parse(raw));
}

module.exports = { install, installHooks, installFromEnv, matches };
