// A backend plugin: an HTTP server on PORT with /healthz and /api/v1/hello.
//
// The tenant comes from the signed context the host adds to each request (X-PowerX-CTX,
// verified with X-PowerX-CTX-SIG and the secret in PLUGIN_CTX_HMAC_SECRET); a request
// without it is answered for no tenant, one with a wrong signature is refused.
//
// It does not call the host's gRPC services (STS, IAM at PX_GRPC_UPSTREAM_ADDRESS), as
// examples/hello-backend-python does: this example is plain node with no dependencies,
// and Node has no gRPC client built in (HTTP/2 framing, protobuf and reflection would
// have to be written by hand). A Node plugin that wants them adds @grpc/grpc-js (with
// @grpc/proto-loader or its reflection client); it dials the same `unix:///...` address.
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const GREETING = "hello from a node backend";

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
  let tenant;
  try {
    tenant = signedTenant(request);
  } catch (error) {
    return answer(response, 401, { error: error.message });
  }
  answer(response, 200, { greeting: GREETING, tenant, pid: process.pid });
});

const [host, port] = (process.env.POWERX_HTTP_ADDR || "").split(/:(?=\d+$)/);
server.listen(Number(port || process.env.PORT), host || "127.0.0.1");
process.on("SIGTERM", () => {
  server.close(() => process.exit(0)); // finish what is in flight, then go
  server.closeIdleConnections(); // kept-alive sockets would hold close() open
});
