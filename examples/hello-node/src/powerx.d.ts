// Types of what the PowerX Node shim passes to a plugin's fetch(request, env, ctx).

export interface HostApiError extends Error {
  status: number;
  code: string; // e.g. "permission_denied"
  fix?: string;
}

export interface Contact {
  id: string;
  name: string;
  email: string;
  tenant: string;
}

export interface Host {
  tenant: string;
  call(method: string, path: string, body?: unknown): Promise<unknown>;
  contacts: { list(): Promise<Contact[]>; get(id: string): Promise<Contact> };
  messages: {
    list(): Promise<Array<{ id: string; to: string; text: string }>>;
    send(to: string, text: string): Promise<unknown>;
  };
  kv: { get(key: string): Promise<unknown>; put(key: string, value: unknown): Promise<unknown> };
}

export interface Env {
  host: Host;
  TENANT: string;
  PLUGIN_ID: string;
  PLUGIN_VERSION: string;
}

export interface Context {
  waitUntil(promise: Promise<unknown>): void;
}
