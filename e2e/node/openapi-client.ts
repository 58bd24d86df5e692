// A client of the facade's HTTP API built only from its OpenAPI 3
// document: openapi.mjs generates ./schema.ts from /openapi.v3.json with
// openapi-typescript, then compiles this file against it with tsc, so a
// call or a field the document does not describe fails to compile.
//
// Usage: node openapi-client.js BASE_URL CALLER_KEY
// Prints one JSON object per call on stdout.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

declare const process: { argv: string[] };

type Status = components["schemas"]["rpcStatus"];

const errorInfoType = "type.googleapis.com/google.rpc.ErrorInfo";

// reasonOf reads the ErrorInfo reason from a typed google.rpc.Status body.
function reasonOf(status: Status | undefined): string | undefined {
  const info = status?.details?.find((d) => d["@type"] === errorInfoType);
  const reason = info?.["reason"];
  return typeof reason === "string" ? reason : undefined;
}

const [baseUrl, key] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });

const otp = await client.POST("/v1/otp", {
  params: { header: { "Idempotency-Key": "ts-client-0001", "X-Request-ID": "ts-client-otp" } },
  body: { owner: "ts-client@example.com", endpoint_id: "ts-endpoint", description: "generated TypeScript client" },
});
console.log(JSON.stringify({
  call: "otp",
  http: otp.response.status,
  otp: otp.data?.otp,
  request_id: otp.response.headers.get("x-request-id"),
}));

const status = await client.GET("/v1/services/{service_id}/status", {
  params: { path: { service_id: "1ryq-e8n8-5g5n" } },
});
console.log(JSON.stringify({
  call: "status",
  http: status.response.status,
  service_id: status.data?.service_id,
  active: status.data?.active,
  online: status.data?.online,
}));

const missing = await client.GET("/v1/services/{service_id}/status", {
  params: { path: { service_id: "no-such-service" } },
});
console.log(JSON.stringify({
  call: "not_found",
  http: missing.response.status,
  code: missing.error?.code,
  reason: reasonOf(missing.error),
}));

const anonymous = createClient<paths>({ baseUrl });
const refused = await anonymous.GET("/v1/services/{service_id}/status", {
  params: { path: { service_id: "1ryq-e8n8-5g5n" } },
});
console.log(JSON.stringify({
  call: "unauthenticated",
  http: refused.response.status,
  reason: reasonOf(refused.error),
  www_authenticate: refused.response.headers.get("www-authenticate"),
}));
