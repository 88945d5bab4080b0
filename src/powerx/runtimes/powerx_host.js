'use strict';
// Helper for Node plugins: the host API client the shim passes in as `env.host`.
// A call outside the manifest's permissions rejects with a HostApiError whose
// `code` is "permission_denied" and whose `fix` says which scope to declare.

class HostApiError extends Error {
  constructor(status, code, message, fix) {
    super(message);
    this.name = 'HostApiError';
    this.status = status;
    this.code = code;
    this.fix = fix;
  }
}

function createHost({ baseUrl, token, tenant }) {
  async function call(method, path, body) {
    const response = await fetch(`${baseUrl}/host/api${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        'x-powerx-tenant': tenant || '',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const info = data || {};
      throw new HostApiError(response.status, info.error || 'host_error', info.message || text, info.fix);
    }
    return data;
  }
  const key = (k) => encodeURIComponent(k);
  return {
    tenant,
    call,
    contacts: {
      list: () => call('GET', '/contacts'),
      get: (id) => call('GET', `/contacts/${key(id)}`),
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
