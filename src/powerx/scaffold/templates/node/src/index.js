// @ts-check
// __PLUGIN_NAME__: a Workers-style fetch handler the simulator serves at
// /plugins/__PLUGIN_ID__/. `env.host` calls the host API for the request's tenant; the
// types come from @powerx/plugin (types only: the plugin runs without `npm install`).

const GREETING = "hello from __PLUGIN_NAME__";

/** @type {import("@powerx/plugin").Handler} */
export default {
  async fetch(request, env) {
    const contacts = await env.host.contacts.list();
    return Response.json({ greeting: GREETING, tenant: env.host.tenant, contacts: contacts.length });
  },
};
