'use strict';
// Loaded through NODE_OPTIONS=--require by each Node process a Node plugin starts (node -e,
// fork, a script), so those install the plugin's egress guard too, from POWERX_EGRESS.
require('./egress_guard.js').installFromEnv();

// A backend program being debugged (POWERX_DEBUG_PROGRAM=1): its first Node opens the
// inspector and waits until the simulator has set the breakpoints (it sends
// Runtime.runIfWaitingForDebugger), as the shim does, before the program's first line.
if (process.env.POWERX_DEBUG_PROGRAM === '1') {
  delete process.env.POWERX_DEBUG_PROGRAM; // the processes it starts run without
  const inspector = require('node:inspector');
  inspector.open(0, '127.0.0.1', false);
  const message = { event: 'debug', url: inspector.url(), pid: process.pid };
  require('node:fs').writeSync(1, `@@powerx ${JSON.stringify(message)}\n`);
  inspector.waitForDebugger();
}
