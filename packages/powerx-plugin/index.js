'use strict';
// The runtime part of @powerx/plugin: the rest is types (index.d.ts). The host API client
// itself (`env.host`) comes from the runtime that runs the plugin, not from this package.

/**
 * Whether `error` is a refusal from the host. The HostApiError class lives in that runtime,
 * so a plugin bundle cannot use `instanceof`: this checks its name and code.
 * @param {unknown} error
 * @returns {error is import("./index").HostApiError}
 */
function isHostApiError(error) {
  return (
    error instanceof Error &&
    error.name === 'HostApiError' &&
    typeof (/** @type {{ code?: unknown }} */ (error).code) === 'string'
  );
}

exports.isHostApiError = isHostApiError;
