// Runs the plugin in a real host simulator: `npm install` once, then `npm test`
// (node --test). The helper works the same in vitest (beforeAll / afterAll).
"use strict";

const assert = require("node:assert/strict");
const path = require("node:path");
const { test } = require("node:test");

const { LocalSimulator } = require("@powerx/plugin/testing");

const PLUGIN = path.resolve(__dirname, "..");
const PLUGIN_ID = "__PLUGIN_ID__";

test("it greets the tenant of the signed context", async (t) => {
  const sim = await LocalSimulator.start([PLUGIN]);
  t.after(() => sim.stop());
  const response = await sim.fetch(`/_p/${PLUGIN_ID}/api/v1/hello`);
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.greeting, "hello from __PLUGIN_NAME__");
  assert.notEqual(body.tenant, null);
});
