/**
 * `npm run demo`: a flash sale in-process on the embedded defaults (shard workers, file
 * journal with fsync). 5,000 attempts by 600 buyers race for 1,000 units with a per-user limit
 * of 2; then the engine is stopped and started again on the same journal to show that every
 * acknowledged reservation survives.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadConfig } from '../engine/index.js';
import type { ReserveRequest } from '../engine/index.js';

const dir = mkdtempSync(join(tmpdir(), 'stockade-demo-'));
const config = loadConfig({ overrides: { journal: { kind: 'file', dir } } });

const engine = await createEngine({ config });
await engine.defineSku({
  sku: 'demo',
  stock: 1_000,
  perUserLimit: 2,
  price: 1999,
  name: 'Demo tee',
});
const requests: ReserveRequest[] = [];
for (let i = 0; i < 5_000; i++) {
  requests.push({
    sku: 'demo',
    userId: `buyer-${i % 600}`,
    qty: 1,
    idempotencyKey: `attempt-${i}`,
  });
}
const started = performance.now();
const results = await engine.reserveMany(requests);
const ms = performance.now() - started;
const outcomes = new Map<string, number>();
for (const r of results) outcomes.set(r.status, (outcomes.get(r.status) ?? 0) + 1);
const first = results.find((r) => r.status === 'reserved');
if (first && first.status === 'reserved') {
  const confirmed = await engine.confirm(first.reservationId);
  console.log(`confirmed ${first.reservationId}: ${confirmed.status}`);
}
console.log(
  `5,000 attempts in ${ms.toFixed(1)} ms on ${engine.shardCount} shards, fsync'd to ${dir}:`,
);
console.log(Object.fromEntries(outcomes));
const before = await engine.getSku('demo');
await engine.close();

const again = await createEngine({ config });
const after = await again.getSku('demo');
const replayed = again.recovery!.shards.reduce((n, s) => n + s.events, 0);
console.log(`restarted: replayed ${replayed} events in ${again.recovery!.readyMs.toFixed(1)} ms`);
console.log('SKU after restart:', after);
console.log(
  JSON.stringify(before) === JSON.stringify(after)
    ? 'identical to before the restart'
    : 'DIFFERENT',
);
await again.close();
