/**
 * What the load generators send: one description (`LoadSpec`) of a stream of purchases or
 * reads, turned into request targets and bodies the same way by every generator (autocannon,
 * the open-loop generator, wrk's Lua, the WebSocket clients), so every system sees the same
 * stream. Request `i` of a stream is a pure function of the spec, the generator's tag and `i`:
 * unique idempotency keys without autocannon's slow `idReplacement`.
 */

export interface LoadSpec {
  kind: 'reserve' | 'read';
  /** One SKU (`skus` 1), or `skus` SKUs named `${sku}${n}` for n in [0, skus), spread evenly. */
  sku: string;
  skus: number;
  /**
   * Buyers: with `users` 0 every request is a new buyer; otherwise request i is buyer
   * i % users (a stream that meets the per-user limit).
   */
  users: number;
  /**
   * Every `retryEvery`-th request is the previous request's buyer again with a new key (a
   * buyer who clicks twice); 0: never.
   */
  retryEvery: number;
  /** Unique per run, so keys never collide with an earlier run's on the same server. */
  run: string;
}

export function skuOf(spec: LoadSpec, i: number): string {
  return spec.skus === 1 ? spec.sku : `${spec.sku}${i % spec.skus}`;
}

/** The JSON body of purchase `i` of a generator tagged `tag` (its thread, its connection). */
export function reserveBody(spec: LoadSpec, tag: string, i: number): string {
  const buyer =
    spec.retryEvery > 0 && i % spec.retryEvery === spec.retryEvery - 1 && i > 0 ? i - 1 : i;
  const user =
    spec.users > 0 ? `u${spec.run}-${buyer % spec.users}` : `u${spec.run}-${tag}-${buyer}`;
  return `{"userId":"${user}","qty":1,"idempotencyKey":"${spec.run}-${tag}-${i}"}`;
}

/** Request `i` as HTTP/1.1 bytes (keep-alive), for generators that write sockets themselves. */
export function rawRequest(spec: LoadSpec, tag: string, i: number): string {
  const sku = skuOf(spec, i);
  if (spec.kind === 'read') return `GET /v1/skus/${sku} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  const body = reserveBody(spec, tag, i);
  return (
    `POST /v1/skus/${sku}/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/**
 * The same stream as a CommonJS module exporting autocannon's `setupRequest` (autocannon's
 * worker threads `require` a file; a function cannot be passed to them). Each thread and each
 * process tags its keys with its thread id and a random part.
 */
export function setupRequestModule(spec: LoadSpec): string {
  return `'use strict';
const { threadId } = require('node:worker_threads');
const spec = ${JSON.stringify(spec)};
const tag = 't' + threadId + Math.random().toString(36).slice(2, 8);
const skuOf = ${skuOf.toString()};
const reserveBody = ${reserveBody.toString()};
let i = 0;
module.exports = function setupRequest(req) {
  const n = i++;
  const sku = skuOf(spec, n);
  if (spec.kind === 'read') return Object.assign(req, { method: 'GET', path: '/v1/skus/' + sku });
  return Object.assign(req, {
    method: 'POST',
    path: '/v1/skus/' + sku + '/reservations',
    headers: { 'content-type': 'application/json' },
    body: reserveBody(spec, tag, n),
  });
};
`;
}

/** The same stream as a wrk Lua script (one counter per wrk thread; run it with a unique arg). */
export function wrkScript(spec: LoadSpec): string {
  if (spec.retryEvery > 0)
    throw new Error('wrkScript: retryEvery is not supported (autocannon sends those)');
  const target =
    spec.skus === 1
      ? `local sku = "${spec.sku}"`
      : `local sku = "${spec.sku}" .. (counter % ${spec.skus})`;
  const path =
    spec.kind === 'read' ? `"/v1/skus/" .. sku` : `"/v1/skus/" .. sku .. "/reservations"`;
  return `
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  -- args[1] is unique per wrk run (see bench/http.ts runWrk): keys never repeat across runs.
  tag = "w" .. id .. "-" .. args[1]
  counter = -1
end
request = function()
  counter = counter + 1
  ${target}
  ${
    spec.kind === 'read'
      ? `return wrk.format("GET", ${path})`
      : `local user = ${spec.users > 0 ? `"u${spec.run}-" .. (counter % ${spec.users})` : `"u${spec.run}-" .. tag .. "-" .. counter`}
  local body = '{"userId":"' .. user .. '","qty":1,"idempotencyKey":"${spec.run}-' .. tag .. '-' .. counter .. '"}'
  return wrk.format("POST", ${path}, {["Content-Type"] = "application/json"}, body)`
  }
end
`;
}
