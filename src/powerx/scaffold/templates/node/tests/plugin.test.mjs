// Runs the plugin in a real host simulator: `npm install` once, then `npm test`
// (node --test). The helper works the same in vitest (beforeAll / afterAll).
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { LocalSimulator } from "@powerx/plugin/testing";

const PLUGIN = fileURLToPath(new URL("..", import.meta.url));
const PLUGIN_ID = "__PLUGIN_ID__";

test("it greets the tenant", async (t) => {
  const sim = await LocalSimulator.start([PLUGIN]);
  t.after(() => sim.stop());
  const response = await sim.fetch(`/plugins/${PLUGIN_ID}/`);
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.greeting, "hello from __PLUGIN_NAME__");
  assert.equal(body.tenant, "acme");
});
