'use strict';
// Drives the simulator's DAP proxy with VS Code's own test client (DebugClient, from
// @vscode/debugadapter-testsupport), the way VS Code talks to a debug adapter server.
// Usage: node drive.js PORT FILE LINE SECRET
// SECRET goes in the attach arguments as launch.json's "powerxToken" (VS Code passes a
// configuration's own keys to the adapter in the attach request).
// One JSON line each way with the Python test (tests/integration/test_dap_debugclient.py):
//   out {"ready": true, "breakpoint": {...}}   attached, breakpoint set, configuration done
//   in  "go"                                   the test reloaded and sent a request
//   out {"line": n, "path": p, "locals": {...}} the stop, as VS Code would show it; then continue
//   in  "done"                                 disconnect and exit 0
const readline = require('node:readline');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

async function main() {
  const [port, file, line, secret] = process.argv.slice(2);
  const client = new DebugClient('node', '', 'python');
  client.defaultTimeout = 20000;
  let thread = 0;
  const seen = [];
  client.on('stopped', (event) => { thread = event.body.threadId; });
  for (const name of ['terminated', 'exited', 'invalidated']) {
    client.on(name, () => seen.push(name));
  }
  await client.start(Number(port));
  const initialized = client.waitForEvent('initialized');
  await client.initializeRequest({
    adapterID: 'python', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path',
  });
  await client.attachRequest({ justMyCode: true, powerxToken: secret });
  await initialized;
  const placed = await client.setBreakpointsRequest({
    source: { path: file }, breakpoints: [{ line: Number(line) }],
  });
  await client.configurationDoneRequest();
  emit({ ready: true, breakpoint: placed.body.breakpoints[0] });

  const input = readline.createInterface({ input: process.stdin });
  for await (const command of input) {
    if (command !== 'go') break;
    const stack = await client.assertStoppedLocation('breakpoint', { path: file, line: Number(line) });
    const frame = stack.body.stackFrames[0];
    const scopes = await client.scopesRequest({ frameId: frame.id });
    const local = scopes.body.scopes.find((scope) => scope.name.toLowerCase() === 'locals');
    const variables = await client.variablesRequest({ variablesReference: local.variablesReference });
    const locals = Object.fromEntries(variables.body.variables.map((v) => [v.name, v.value]));
    await client.continueRequest({ threadId: thread });
    emit({ line: frame.line, path: frame.source.path, locals, seen });
  }
  input.close();
  await client.disconnectRequest({ terminateDebuggee: false });
  await client.stop();
  process.exit(0); // stdin may still be open: do not wait for it
}

main().catch((error) => {
  process.stderr.write(String((error && error.stack) || error) + '\n');
  process.exit(1);
});
