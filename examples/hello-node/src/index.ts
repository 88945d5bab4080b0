// Hello Node: a PowerX plugin served by the host simulator, typed by @powerx/plugin.
import type { Handler, HostApiError } from "@powerx/plugin";

const GREETING = "hello from node";

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      const contacts = await env.host.contacts.list();
      return json({
        plugin: "hello-node",
        greeting: GREETING,
        tenant: env.TENANT,
        contacts: contacts.length,
        first_contact: contacts[0]?.name ?? null,
      });
    }
    if (url.pathname === "/messages") {
      // messages:read is not in the manifest: the host answers 403 permission_denied.
      try {
        return json(await env.host.messages.list());
      } catch (error) {
        const e = error as HostApiError;
        return json({ error: e.code, message: e.message, fix: e.fix }, e.status);
      }
    }
    return json({ error: "not_found", message: `no route ${url.pathname}` }, 404);
  },
} satisfies Handler;
