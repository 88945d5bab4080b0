// Types of what a PowerX Node handler plugin gets from the host simulator (and from
// PowerX): a Workers-style `fetch(request, env, ctx)` whose `env.host` calls the host API
// for the tenant of the request being served.
//
//   import type { Handler } from "@powerx/plugin";
//
//   export default {
//     async fetch(request, env) {
//       const contacts = await env.host.contacts.list();
//       return Response.json({ tenant: env.TENANT, contacts: contacts.length });
//     },
//   } satisfies Handler;

/** Any JSON document: what the host stores under a kv key and what `call` answers. */
export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

/**
 * Codes the host answers a refused call with. `permission_denied`: the manifest lacks the
 * scope (`fix` names it); `rbac_denied`: the identity of the request being served lacks
 * the permission; `tenant_not_granted`: a tenant the request did not grant;
 * `not_found`: a missing contact or kv key; `invalid_body`: a malformed call.
 */
export type HostApiErrorCode =
  | "permission_denied"
  | "rbac_denied"
  | "tenant_not_granted"
  | "not_found"
  | "invalid_body"
  | "api_not_available"
  | "host_error"
  | (string & {});

/**
 * The host refused a call (the promise rejects with it). A permission denial the plugin
 * does not catch answers its request `403` with the host's JSON (`error`, `message`, `fix`)
 * and logs one line.
 *
 * @example
 * try {
 *   await env.host.messages.send(contactId, "hi");
 * } catch (error) {
 *   if (isHostApiError(error) && error.code === "permission_denied") {
 *     return Response.json({ error: error.code, fix: error.fix }, { status: error.status });
 *   }
 *   throw error;
 * }
 */
export interface HostApiError extends Error {
  name: "HostApiError";
  /** The HTTP status the host answered, e.g. 403. */
  status: number;
  code: HostApiErrorCode;
  /** How to fix it, e.g. "add 'messages:write' to permissions in plugin.yaml". */
  fix?: string;
}

/**
 * Whether `error` is a refusal from the host (the class itself lives in the runtime that
 * runs the plugin, so `instanceof` cannot be used from a bundle).
 */
export declare function isHostApiError(error: unknown): error is HostApiError;

/** A contact of the tenant (`contacts:read`). */
export interface Contact {
  /** e.g. "c_001" */
  id: string;
  name: string;
  email: string;
  tenant: string;
}

/** A message sent to a contact (`messages:read`, `messages:write`). */
export interface Message {
  /** e.g. "m_003" */
  id: string;
  /** A contact id. */
  to: string;
  text: string;
}

/** The tenant a call is made for (`tenant:read`; host API 3.0). */
export interface Tenant {
  id: string;
  name: string;
  plan: string;
}

/** What `kv.put` answers. */
export interface KvEntry<T extends JSONValue = JSONValue> {
  key: string;
  value: T;
}

/**
 * The host API, for one tenant: `env.host`. Every call needs a scope in the manifest's
 * `permissions` (named on each method); without it the promise rejects with a
 * {@link HostApiError} whose code is `permission_denied`.
 */
export interface Host {
  /** The tenant the calls are made for: the request's (`X-PowerX-Tenant`), else the simulator's. */
  readonly tenant: string;
  /**
   * Any host API call: `method` and `path` under `/host/api`, `body` sent as JSON; the
   * answer's JSON (null when it has none).
   * @example const tenant = await env.host.call<Tenant>("GET", "/tenant");
   */
  call<T = JSONValue>(method: string, path: string, body?: unknown): Promise<T>;
  /** The tenant's id, name and plan (`tenant:read`; host API 3.0). */
  getTenant(): Promise<Tenant>;
  contacts: {
    /**
     * The tenant's contacts (`contacts:read`).
     * @example const names = (await env.host.contacts.list()).map((c) => c.name);
     */
    list(): Promise<Contact[]>;
    /** One contact by id (`contacts:read`); rejects with `not_found` if there is none. */
    get(id: string): Promise<Contact>;
    /** Contacts whose name contains `query`, ignoring case (`contacts:read`; host API 3.0). */
    search(query: string): Promise<Contact[]>;
  };
  messages: {
    /** The messages sent in the tenant (`messages:read`). */
    list(): Promise<Message[]>;
    /**
     * Send `text` to the contact `to` (`messages:write`); the stored message.
     * @example const sent = await env.host.messages.send("c_001", "Welcome aboard!");
     */
    send(to: string, text: string): Promise<Message>;
  };
  /** This plugin's key-value store for the tenant. */
  kv: {
    /**
     * The value under `key` (`kv:read`); rejects with `not_found` if there is none.
     * @example const visits = await env.host.kv.get<number>("visits");
     */
    get<T extends JSONValue = JSONValue>(key: string): Promise<T>;
    /** Store `value` (any JSON) under `key` (`kv:write`). */
    put<T extends JSONValue>(key: string, value: T): Promise<KvEntry<T>>;
    /** Remove `key` (`kv:write`); removing a missing key is not an error. */
    delete(key: string): Promise<null>;
  };
}

/**
 * The second argument of `fetch`. The plugin's own settings and secrets (`.dev.vars`)
 * are in `process.env`, not here.
 */
export interface Env {
  /** The host API for the tenant of this request. */
  host: Host;
  /** The tenant of this request (the same as `host.tenant`). */
  TENANT: string;
  /** The manifest's `id`, e.g. "com.example.hello-node". */
  PLUGIN_ID: string;
  /** The manifest's `version`. */
  PLUGIN_VERSION: string;
}

/** The third argument of `fetch`. */
export interface ExecutionContext {
  /** Keep working after the response is sent: the process is not stopped before `promise` settles. */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * A handler plugin: its entry's default export (or `module.exports`). The simulator calls
 * `fetch` for each request, with the path under the plugin's mount (`/` for
 * `/plugins/<id>/`). It must resolve to a `Response`.
 *
 * In TypeScript: `export default { async fetch(request, env) { ... } } satisfies Handler;`
 * In JavaScript with `// @ts-check`: put `@type {import("@powerx/plugin").Handler}` in a
 * doc comment above `export default { ... }`.
 */
export interface Handler {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response>;
}
