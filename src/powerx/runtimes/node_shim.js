'use strict';
// Run one Node plugin generation: load its bundle and serve its Workers-style
// `fetch(request, env, ctx)` handler on a loopback port.
// Usage: node --enable-source-maps node_shim.js ROOT BUNDLE [SOURCE_ROOT]
//    or: node --enable-source-maps node_shim.js --spare
// A spare is warm (node started, shim loaded, its server listening) and waits for one
// JSON line on stdin: {"argv": [ROOT, BUNDLE, SOURCE_ROOT], "env": {...}}. It reports its
// port before the order, so the simulator's health probe can be on its way while the
// plugin loads; requests (the probe too) wait until the plugin has loaded.
// Control lines go to stdout prefixed with "@@powerx " (see runtimes/__init__.py).
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const { createHost, HostApiError } = require('./powerx_host.js');
const egressGuard = require('./egress_guard.js');

const CONTROL_PREFIX = '@@powerx ';
const TENANT_HEADER = 'x-powerx-tenant';
const GRANT_HEADER = 'x-powerx-grant';
const HEALTH_PATH = '/__powerx/health';
const PRELOAD_ENV = 'POWERX_NODE_PRELOAD';

function control(event, fields) {
  process.stdout.write(CONTROL_PREFIX + JSON.stringify({ event, ...fields }) + '\n');
}

function whereInPlugin(error, root) {
  // With --enable-source-maps the stack names the TypeScript sources.
  const lines = String((error && error.stack) || '').split('\n');
  for (const line of lines) {
    const match = line.match(/\(?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/);
    if (!match) continue;
    const file = match[1].replace(/^file:\/\//, '');
    if (file.startsWith(root) && !file.includes('node_modules')) {
      return { file: path.relative(root, file), line: Number(match[2]) };
    }
  }
  return { file: null, line: null };
}

function missingPackage(error) {
  // "Cannot find module 'x'" for a bare name: a package the plugin does not have (the
  // simulator says to add it to package.json), not the plugin's own file.
  if (!error || error.code !== 'MODULE_NOT_FOUND') return {};
  const match = String(error.message).match(/^Cannot find module '([^']+)'/);
  if (!match || /^(\.|\/|node:)/.test(match[1])) return {};
  const parts = match[1].split('/');
  return { module: match[1].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] };
}

function fail(kind, error, root) {
  const where = whereInPlugin(error, root);
  control('error', {
    kind, ...where, ...missingPackage(error),
    message: `${(error && error.name) || 'Error'}: ${(error && error.message) || error}`,
    traceback: String((error && error.stack) || error),
  });
  process.exit(1);
}

async function toRequest(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = chunks.length ? Buffer.concat(chunks) : undefined;
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) value.forEach((v) => headers.append(name, v));
    else if (value !== undefined) headers.set(name, value);
  }
  const method = req.method || 'GET';
  const origin = req.socket.localPort ? `http://127.0.0.1:${req.socket.localPort}` : 'http://localhost';
  return new Request(`${origin}${req.url}`, {
    method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body,
  });
}

// The plugin lacks the scope, or the identity of the request it serves lacks the permission.
const DENIALS = new Set(['permission_denied', 'rbac_denied']);

function isDenial(error) {
  return error instanceof HostApiError && DENIALS.has(error.code);
}

function answerDenial(req, res, error) {
  // A host permission denial the plugin did not catch: the host's 403 and its JSON
  // (error, message, fix) answer the request, and the log gets one line, the same as a
  // Python plugin's (powerx_plugin.answer_denials), not a stack trace.
  const path = (req.url || '').split('?')[0];
  console.error(`WARNING ${error.code}: ${req.method} ${path} answered ${error.status}: ` +
    `${error.message} fix: ${error.fix}`);
  res.writeHead(error.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: error.code, message: error.message, fix: error.fix }));
}

function listener(handler, makeEnv) {
  // One request: the health probe, or the plugin's fetch(request, env, ctx).
  return async (req, res) => {
    if (req.url === HEALTH_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
      return;
    }
    try {
      const request = await toRequest(req);
      const env = makeEnv(request.headers.get(TENANT_HEADER) || process.env.POWERX_TENANT || '',
        request.headers.get(GRANT_HEADER) || '');
      const pending = [];
      const ctx = { waitUntil: (promise) => pending.push(promise) };
      const response = await handler.fetch(request, env, ctx);
      if (!(response instanceof Response)) throw new TypeError('fetch() must return a Response');
      const body = Buffer.from(await response.arrayBuffer());
      const headers = {};
      response.headers.forEach((value, name) => { headers[name] = value; });
      res.writeHead(response.status, headers);
      res.end(body);
      await Promise.allSettled(pending);
    } catch (error) {
      if (isDenial(error) && !res.headersSent) {
        answerDenial(req, res, error);
        return;
      }
      console.error(error && error.stack ? error.stack : String(error));
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'plugin_exception', message: String(error && error.message) }));
      } else {
        res.end();
      }
    }
  };
}

function listen(server) {
  // A loopback port; in a sandbox, a unix socket in the folder the simulator reaches
  // directly (POWERX_LISTEN_DIR). Resolves to how the simulator finds it.
  const folder = process.env.POWERX_LISTEN_DIR;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (folder) {
      const where = path.join(folder, `http-${process.pid}-${crypto.randomBytes(4).toString('hex')}.sock`);
      server.listen(where, () => resolve({ unix: where }));
    } else {
      server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port }));
    }
  });
}

function startDebugger() {
  // With POWERX_DEBUGGER=1: open the inspector and wait until the simulator has replayed
  // the breakpoints (it sends Runtime.runIfWaitingForDebugger) before any plugin code runs.
  if (process.env.POWERX_DEBUGGER !== '1') return;
  const inspector = require('node:inspector');
  inspector.open(0, '127.0.0.1', false);
  control('debug', { url: inspector.url(), pid: process.pid });
  inspector.waitForDebugger();
}

function firstLine() {
  // Read exactly one line from stdin; later bytes (none are sent) are ignored.
  return new Promise((resolve) => {
    let buffered = '';
    const onData = (chunk) => {
      buffered += chunk;
      const end = buffered.indexOf('\n');
      if (end >= 0) {
        process.stdin.off('data', onData);
        resolve(buffered.slice(0, end));
      }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.once('end', () => process.exit(0));
  });
}

async function warmUp() {
  // A fresh process pays ~10-30 ms the first time it serves HTTP, parses a Request,
  // reads a Response and calls the host API, ~0.45 ms for the first module with a
  // source map (see source_map_warm.js) and ~0.3 ms to hook the egress guard in. A
  // spare pays that before it is asked to serve, on a throwaway server with an echo
  // handler, not on a generation's first request (the guard gets its policy with the
  // order). No plugin code runs here and nothing leaves loopback. fetch() is not
  // warmed: the host client does not use it, and its first use (undici's WebAssembly
  // HTTP parser) would cost the spare ~50 ms of CPU, paid during the next reload.
  require('./source_map_warm.js');
  egressGuard.installHooks(); // no policy until the order: no plugin code runs before it
  const echo = { fetch: async (request) => new Response(await request.text(), {
    headers: { 'content-type': 'application/json' } }) };
  const server = http.createServer(listener(echo, (tenant) => ({ TENANT: tenant })));
  try {
    // Where the spare will listen (a port, or a unix socket in a sandbox) and call the
    // host API the same way, so the warm-up runs the code paths a request will.
    const where = await listen(server);
    const baseUrl = where.port ? `http://127.0.0.1:${where.port}` : 'http://localhost';
    const host = createHost({ baseUrl, socketPath: where.unix, token: 'warm-up', tenant: 't' });
    await host.call('POST', '/warm', { warm: true });
    await host.call('GET', '/warm');
    return true;
  } catch (error) {
    return false; // warming is an optimisation only (the spare says whether it warmed)
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

function useNodePath() {
  // NODE_PATH is read once, at start-up: a spare is given it (the plugin's node_modules)
  // after, so its module paths are computed again.
  require('node:module')._initPaths();
}

function preloadDependencies() {
  // The plugin's packages (POWERX_NODE_PRELOAD: its node_modules and what its bundle
  // require()s), evaluated here before the order, not by the generation: its bundle's
  // require() finds them in the cache. A package that fails to load is left for the
  // generation to load, and report.
  const wanted = process.env[PRELOAD_ENV];
  if (!wanted) return;
  const { node_path: nodePath, modules, code_cache: codeCache } = JSON.parse(wanted);
  const { withCodeCache, requireAll } = require('./node_code_cache.js'); // only spares that load
  process.env.NODE_PATH = nodePath;
  useNodePath();
  // Compiled from V8's code cache where the simulator made one (node_code_cache.js); a
  // module that does not load is left to the generation's own require(), to report.
  withCodeCache(codeCache || null, null, () => requireAll(nodePath, modules));
}

function deferredListener() {
  // A listener for a server that is up before the plugin is loaded: each request waits
  // for serve(), which is given the plugin's own listener once it has loaded.
  let serve;
  const loaded = new Promise((resolve) => { serve = resolve; });
  return { listener: async (req, res) => (await loaded)(req, res), serve };
}

async function main() {
  let args = process.argv.slice(2);
  let server = null;
  let serve = null;
  if (args[0] === '--spare') {
    const warmed = await warmUp();
    const deferred = deferredListener();
    server = http.createServer(deferred.listener);
    serve = deferred.serve;
    control('spare', { pid: process.pid, warmed, ...(await listen(server)) });
    // After the line above: a package may print as it loads, and the simulator reads
    // that line first. The order, if it comes meanwhile, waits in the pipe.
    preloadDependencies();
    const order = JSON.parse(await firstLine());
    for (const name of Object.keys(process.env)) delete process.env[name];
    Object.assign(process.env, order.env);
    useNodePath();
    args = order.argv;
  }
  const root = path.resolve(args[0]);
  const bundle = path.resolve(root, args[1]);
  const sourceRoot = args[2] ? path.resolve(args[2]) : root;
  process.chdir(root);
  startDebugger();
  egressGuard.installFromEnv(); // before any plugin code runs
  // The simulator holds our stdin; EOF means it is gone, so we go too.
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));

  let handler;
  try {
    const loaded = require(bundle);
    handler = (loaded && loaded.default) || loaded;
  } catch (error) {
    fail(error instanceof SyntaxError ? 'syntax_error' : 'import_error', error, sourceRoot);
    return;
  }
  if (!handler || typeof handler.fetch !== 'function') {
    fail('import_error', new TypeError(
      'the entry must export a handler with fetch(request, env), e.g. export default { fetch }'),
    sourceRoot);
    return;
  }
  const baseEnv = {
    PLUGIN_ID: process.env.POWERX_PLUGIN_ID,
    PLUGIN_VERSION: process.env.POWERX_PLUGIN_VERSION,
  };
  const makeEnv = (tenant, grant) => ({ ...baseEnv, TENANT: tenant, host: createHost({
    baseUrl: process.env.POWERX_HOST_URL, socketPath: process.env.POWERX_HOST_SOCKET,
    token: process.env.POWERX_PLUGIN_TOKEN, tenant, grant }) });
  let where;
  if (server === null) {
    server = http.createServer(listener(handler, makeEnv));
    where = await listen(server);
  } else {
    serve(listener(handler, makeEnv));
    const address = server.address();
    where = typeof address === 'string' ? { unix: address } : { port: address.port };
  }
  server.keepAliveTimeout = 30000;
  control('ready', { ...where, pid: process.pid });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => fail('startup_error', error, process.cwd()));
