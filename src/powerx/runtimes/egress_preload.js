'use strict';
// Loaded through NODE_OPTIONS=--require by each Node process a Node plugin starts (node -e,
// fork, a script), so those install the plugin's egress guard too, from POWERX_EGRESS.
require('./egress_guard.js').installFromEnv();
