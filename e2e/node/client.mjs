#!/usr/bin/env node
// client.mjs is a small Node.js client for radkit.access.v1.AccessService,
// used by the Go e2e tests (see e2e/node.go) to prove that stubs generated at
// run time from proto/ by @grpc/proto-loader work against the facade.
//
// Usage:
//
//   node client.mjs --addr 127.0.0.1:PORT --calls '<json array>'
//                   [--ca ca.pem [--cert client.pem --key client-key.pem]]
//                   [--server-name NAME] [--connect-timeout-ms N]
//
// Each element of --calls is
//
//   {"rpc": "GenerateOTP" | "GetServiceStatus" | "RevokeToken" | "WatchServiceStatus",
//    "request": {...}, "deadline_ms": N?, "metadata": {"key": "value"}?}
//
// Metadata keys ending in "-bin" take base64 values. The calls are made in
// order, one at a time, and each prints one JSON line on stdout:
//
//   {"rpc": ..., "ok": bool, "response": {...} | null, "code": N,
//    "code_name": "NOT_FOUND", "details": "...", "error_reasons": [...]}
//
// A server stream (WatchServiceStatus) is read to its end; its result has
// "response": null and "messages": [...], every message received, in order.
//
// error_reasons lists the google.rpc.ErrorInfo reasons found in the
// grpc-status-details-bin trailer. The exit status is 0 when every call was
// made, whatever its gRPC status; 2 on usage errors; 1 when the client
// cannot be set up or the channel does not become ready (the first failed
// connection attempt counts, as does --connect-timeout-ms passing).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const includeDirs = [resolve(repoRoot, 'proto'), resolve(repoRoot, 'third_party', 'googleapis')];
const protoFile = 'radkit/access/v1/access.proto';
const rpcNames = new Set(['GenerateOTP', 'GetServiceStatus', 'RevokeToken', 'WatchServiceStatus']);
const streamNames = new Set(['WatchServiceStatus']);

// protobufjs is proto-loader's own dependency; resolve it from there so that
// this script does not depend on how npm hoisted it.
const require = createRequire(import.meta.url);
const protobuf = createRequire(require.resolve('@grpc/proto-loader'))('protobufjs');

// Just enough of google.rpc.Status, google.protobuf.Any and
// google.rpc.ErrorInfo to read the reasons out of grpc-status-details-bin.
const statusRoot = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
`, { keepCase: true }).root;
const StatusMsg = statusRoot.lookupType('google.rpc.Status');
const ErrorInfoMsg = statusRoot.lookupType('google.rpc.ErrorInfo');
const errorInfoTypeURL = 'type.googleapis.com/google.rpc.ErrorInfo';

function usage(msg) {
  process.stderr.write(`client.mjs: ${msg}\n` +
    "usage: node client.mjs --addr HOST:PORT --calls '<json array>' " +
    '[--ca FILE [--cert FILE --key FILE]] [--server-name NAME] [--connect-timeout-ms N]\n');
  process.exit(2);
}

function fail(msg) {
  process.stderr.write(`client.mjs: ${msg}\n`);
  process.exit(1);
}

function parseCLI() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        addr: { type: 'string' },
        calls: { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        'server-name': { type: 'string' },
        'connect-timeout-ms': { type: 'string', default: '10000' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage(err.message);
  }
  if (!values.addr) usage('--addr is required');
  if (values.calls === undefined) usage('--calls is required');
  if ((values.cert === undefined) !== (values.key === undefined)) usage('--cert and --key go together');
  if (values.cert !== undefined && values.ca === undefined) usage('--cert and --key need --ca');
  const connectTimeoutMs = Number(values['connect-timeout-ms']);
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs <= 0) usage('--connect-timeout-ms must be a positive integer');

  let calls;
  try {
    calls = JSON.parse(values.calls);
  } catch (err) {
    usage(`--calls is not JSON: ${err.message}`);
  }
  if (!Array.isArray(calls)) usage('--calls must be a JSON array');
  calls.forEach((c, i) => {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) usage(`call ${i}: not an object`);
    if (!rpcNames.has(c.rpc)) usage(`call ${i}: unknown rpc ${JSON.stringify(c.rpc)}`);
    if (c.request !== undefined && c.request !== null && (typeof c.request !== 'object' || Array.isArray(c.request))) {
      usage(`call ${i}: request must be an object`);
    }
    if (c.deadline_ms !== undefined && c.deadline_ms !== null && !(Number.isInteger(c.deadline_ms) && c.deadline_ms > 0)) {
      usage(`call ${i}: deadline_ms must be a positive integer`);
    }
    if (c.metadata !== undefined && c.metadata !== null) {
      if (typeof c.metadata !== 'object' || Array.isArray(c.metadata)) usage(`call ${i}: metadata must be an object`);
      for (const [k, v] of Object.entries(c.metadata)) {
        if (typeof v !== 'string') usage(`call ${i}: metadata ${JSON.stringify(k)} must be a string`);
      }
    }
  });
  return { ...values, calls, connectTimeoutMs };
}

function credentials(opts) {
  if (opts.ca === undefined) return grpc.credentials.createInsecure();
  try {
    const ca = readFileSync(opts.ca);
    const key = opts.key === undefined ? null : readFileSync(opts.key);
    const cert = opts.cert === undefined ? null : readFileSync(opts.cert);
    return grpc.credentials.createSsl(ca, key, cert);
  } catch (err) {
    fail(`TLS credentials: ${err.message}`);
  }
}

function errorReasons(trailers) {
  const reasons = [];
  if (!trailers) return reasons;
  for (const raw of trailers.get('grpc-status-details-bin')) {
    const st = StatusMsg.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw), 'base64'));
    for (const any of st.details || []) {
      if (any.type_url === errorInfoTypeURL || any.type_url.endsWith('/google.rpc.ErrorInfo')) {
        reasons.push(ErrorInfoMsg.decode(any.value).reason);
      }
    }
  }
  return reasons;
}

function toMetadata(obj) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(obj || {})) {
    md.add(k, k.endsWith('-bin') ? Buffer.from(v, 'base64') : v);
  }
  return md;
}

// failure reads a failed call. deadline is the call's deadline (a Date) or
// undefined. At a deadline both ends act: grpc-js fails the call with
// DEADLINE_EXCEEDED when its timer fires, and grpc-go's server resets the
// stream with RST_STREAM(CANCEL), which grpc-js reports as CANCELLED
// ("Call cancelled") when it arrives first, as it can on a loaded machine.
// gRPC's PROTOCOL-HTTP2.md asks clients to check their deadline when a call
// ends CANCELLED, and grpc-go's client does so; grpc-js does not, so this
// script does it for the calls it reports.
function failure(rpc, err, deadline) {
  let code = typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN;
  if (code === grpc.status.CANCELLED && deadline && Date.now() >= deadline.getTime()) {
    code = grpc.status.DEADLINE_EXCEEDED;
  }
  let reasons = [];
  let details = err.details ?? err.message;
  try {
    reasons = errorReasons(err.metadata);
  } catch (decodeErr) {
    details = `${details} (undecodable grpc-status-details-bin: ${decodeErr.message})`;
  }
  return {
    rpc,
    ok: false,
    response: null,
    code,
    code_name: grpc.status[code] ?? `CODE_${code}`,
    details,
    error_reasons: reasons,
  };
}

function invoke(client, call) {
  return new Promise((done) => {
    const options = {};
    if (call.deadline_ms) options.deadline = new Date(Date.now() + call.deadline_ms);
    if (streamNames.has(call.rpc)) {
      const messages = [];
      const stream = client[call.rpc](call.request || {}, toMetadata(call.metadata), options);
      stream.on('data', (m) => messages.push(m));
      stream.on('error', (err) => done({ ...failure(call.rpc, err, options.deadline), messages }));
      stream.on('end', () => done({ rpc: call.rpc, ok: true, response: null, messages, code: 0, code_name: 'OK', details: '', error_reasons: [] }));
      return;
    }
    client[call.rpc](call.request || {}, toMetadata(call.metadata), options, (err, response) => {
      if (!err) {
        done({ rpc: call.rpc, ok: true, response, code: 0, code_name: 'OK', details: '', error_reasons: [] });
        return;
      }
      done(failure(call.rpc, err, options.deadline));
    });
  });
}

// waitReady connects channel and resolves once it is READY. Unlike
// client.waitForReady it gives up at the first TRANSIENT_FAILURE (refused
// connection, failed TLS handshake), so a bad address fails fast.
function waitReady(channel, deadline) {
  const { READY, TRANSIENT_FAILURE, SHUTDOWN } = grpc.connectivityState;
  return new Promise((resolveReady, rejectReady) => {
    // grpc-js unrefs its own timers; this one keeps the process alive until
    // the channel settles or the deadline passes.
    const timer = setTimeout(() => ko(new Error('not ready before the deadline')), deadline - Date.now());
    const ok = () => { clearTimeout(timer); resolveReady(); };
    const ko = (err) => { clearTimeout(timer); rejectReady(err); };
    const check = (state) => {
      if (state === READY) return ok();
      if (state === TRANSIENT_FAILURE || state === SHUTDOWN) return ko(new Error(`channel is ${grpc.connectivityState[state]}`));
      channel.watchConnectivityState(state, deadline, (err) => {
        if (err) return ko(new Error(`not ready before the deadline: ${err.message}`));
        check(channel.getConnectivityState(true));
      });
    };
    check(channel.getConnectivityState(true));
  });
}

async function main() {
  const opts = parseCLI();

  let AccessService;
  try {
    const def = protoLoader.loadSync(protoFile, {
      includeDirs,
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    AccessService = grpc.loadPackageDefinition(def).radkit.access.v1.AccessService;
  } catch (err) {
    fail(`loading ${protoFile} from ${includeDirs.join(', ')}: ${err.message}`);
  }

  const channelOptions = {};
  if (opts['server-name']) channelOptions['grpc.ssl_target_name_override'] = opts['server-name'];
  const client = new AccessService(opts.addr, credentials(opts), channelOptions);

  try {
    await waitReady(client.getChannel(), new Date(Date.now() + opts.connectTimeoutMs));
  } catch (err) {
    client.close();
    fail(`connecting to ${opts.addr}: ${err.message}`);
  }

  for (const call of opts.calls) {
    const result = await invoke(client, call);
    process.stdout.write(JSON.stringify(result) + '\n');
  }
  client.close();
}

await main().catch((err) => fail(err.stack || String(err)));
