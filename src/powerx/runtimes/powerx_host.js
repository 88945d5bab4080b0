'use strict';
// Helper for Node plugins: the host API client the shim passes in as `env.host` (typed by
// the @powerx/plugin package, packages/powerx-plugin/index.d.ts: keep the two in step).
// A call outside the manifest's permissions rejects with a HostApiError whose
// `code` is "permission_denied" and whose `fix` says which scope to declare.
//
// It speaks node:http over one keep-alive agent rather than fetch(): the simulator is
// plain HTTP on loopback, and fetch() would load undici in every generation (~50 ms of
// CPU for a warm spare, or ~25 ms on a generation's first call).
const http = require('node:http');
const https = require('node:https');

class HostApiError extends Error {
  constructor(status, code, message, fix) {
    super(message);
    this.name = 'HostApiError';
    this.status = status;
    this.code = code;
    this.fix = fix;
  }
}

// An idle connection is dropped after 4 s, before the simulator (uvicorn: 5 s) may close
// it: reusing a connection the server is closing fails with ECONNRESET.
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: 4000 }),
  'https:': new https.Agent({ keepAlive: true, timeout: 4000 }),
};

// socketPath: in a sandbox the simulator is also on a unix socket bound into it, the
// direct way there.
function send(url, method, headers, body, socketPath) {
  const transport = url.protocol === 'https:' ? https : http;
  const options = { method, headers, agent: agents[url.protocol], socketPath };
  return new Promise((resolve, reject) => {
    const request = transport.request(url, options, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({
        status: response.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

// Calls are for `tenant`: the request's, with the simulator's grant for it, or the
// simulator's own (no grant needed); a tenant without its grant is refused.
function createHost({ baseUrl, token, tenant, grant, socketPath }) {
  async function call(method, path, body) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { authorization: `Bearer ${token}`, 'x-powerx-tenant': tenant || '' };
    if (grant) headers['x-powerx-grant'] = grant;
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const { status, text } = await send(
      new URL(`${baseUrl}/host/api${path}`), method, headers, payload, socketPath || undefined);
    const data = text ? JSON.parse(text) : null;
    if (status < 200 || status >= 300) {
      const info = data || {};
      throw new HostApiError(status, info.error || 'host_error', info.message || text, info.fix);
    }
    return data;
  }
  const key = (k) => encodeURIComponent(k);
  return {
    tenant,
    call,
    getTenant: () => call('GET', '/tenant'),
    contacts: {
      list: () => call('GET', '/contacts'),
      get: (id) => call('GET', `/contacts/${key(id)}`),
      search: (query) => call('GET', `/contacts/search?q=${key(query)}`),
    },
    messages: {
      list: () => call('GET', '/messages'),
      send: (to, text) => call('POST', '/messages', { to, text }),
    },
    kv: {
      get: async (k) => (await call('GET', `/kv/${key(k)}`)).value,
      put: (k, value) => call('PUT', `/kv/${key(k)}`, { value }),
      delete: (k) => call('DELETE', `/kv/${key(k)}`),
    },
  };
}

module.exports = { createHost, HostApiError };
