// Proves the facade's OpenAPI documents with real tools: validates
// /openapi.json (OpenAPI 2) and /openapi.v3.json (OpenAPI 3) with
// @apidevtools/swagger-parser, generates TypeScript types from the v3
// document with openapi-typescript, compiles openapi-client.ts against
// them with tsc (strict) and runs it against the facade.
//
// Usage: node openapi.mjs --base http://127.0.0.1:PORT --key CALLER_KEY
// Prints one JSON object per line on stdout: {"validated": ...} for each
// document, then the client's lines. Exits non-zero on any failure.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import SwaggerParser from "@apidevtools/swagger-parser";
import openapiTS, { astToString } from "openapi-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { base: { type: "string" }, key: { type: "string" } } });
if (!values.base || !values.key) {
  console.error("usage: node openapi.mjs --base URL --key KEY");
  process.exit(2);
}

async function fetchDocument(path) {
  const res = await fetch(values.base + path, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) {
    throw new Error(`GET ${path}: ${res.status}`);
  }
  return res.json();
}

for (const path of ["/openapi.json", "/openapi.v3.json"]) {
  const doc = await fetchDocument(path);
  // validate dereferences in place: give it a copy.
  const api = await SwaggerParser.validate(structuredClone(doc));
  console.log(JSON.stringify({ validated: path, version: api.swagger ?? api.openapi }));
}

// The work directory is inside this one, so that the compiled client
// finds openapi-fetch in node_modules here.
const work = mkdtempSync(join(here, ".openapi-"));
try {
  const ast = await openapiTS(await fetchDocument("/openapi.v3.json"));
  writeFileSync(join(work, "schema.ts"), astToString(ast));
  copyFileSync(join(here, "openapi-client.ts"), join(work, "openapi-client.ts"));
  writeFileSync(join(work, "package.json"), JSON.stringify({ type: "module" }));
  const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "--strict", "--noUncheckedIndexedAccess",
    "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext",
    "--lib", "es2022,dom", "--skipLibCheck", "--outDir", join(work, "out"),
    join(work, "openapi-client.ts")], { stdio: ["ignore", "inherit", "inherit"], timeout: 120_000 });
  execFileSync(process.execPath, [join(work, "out", "openapi-client.js"), values.base, values.key],
    { stdio: ["ignore", "inherit", "inherit"], timeout: 60_000 });
} finally {
  rmSync(work, { recursive: true, force: true });
}
