// @ts-check
// __PLUGIN_NAME__: a Workers-style fetch handler the simulator serves at
// /plugins/__PLUGIN_ID__/. `env.host` calls the host API for the request's tenant.

const GREETING = "hello from __PLUGIN_NAME__";

export default {
  /**
   * @param {Request} request
   * @param {{ host: { tenant: string, contacts: { list(): Promise<unknown[]> } } }} env
   */
  async fetch(request, env) {
    const contacts = await env.host.contacts.list();
    return Response.json({ greeting: GREETING, tenant: env.host.tenant, contacts: contacts.length });
  },
};
