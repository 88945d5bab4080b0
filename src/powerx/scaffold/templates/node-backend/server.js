// __PLUGIN_NAME__: an HTTP server on PORT (Node's http, no dependencies), started as PowerX
// starts one. The tenant comes from the signed context the host adds to each request
// (X-PowerX-CTX, verified with X-PowerX-CTX-SIG and the secret in PLUGIN_CTX_HMAC_SECRET).
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const GREETING = "hello from __PLUGIN_NAME__";

function signedTenant(request) {
  const context = request.headers["x-powerx-ctx"];
  if (context === undefined) return null;
  const secret = process.env.PLUGIN_CTX_HMAC_SECRET || "";
  const expected = crypto.createHmac("sha256", secret).update(context).digest("hex");
  const given = Buffer.from(String(request.headers["x-powerx-ctx-sig"] || ""));
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, Buffer.from(expected))) {
    throw new Error("bad context signature");
  }
  return String(JSON.parse(Buffer.from(context, "base64").toString("utf8")).tid);
}

function answer(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

const server = http.createServer((request, response) => {
  const path = new URL(request.url, "http://plugin").pathname;
  if (path === "/healthz") return answer(response, 200, { ok: true });
  if (path !== "/api/v1/hello") return answer(response, 404, { error: "not_found", path });
  try {
    answer(response, 200, { greeting: GREETING, tenant: signedTenant(request) });
  } catch (error) {
    answer(response, 401, { error: error.message });
  }
});

server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
