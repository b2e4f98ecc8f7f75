/**
 * `npm run demo`: a one-minute flash sale in-process, on the embedded defaults. 5,000 attempts by 400 buyers
 * race for 1,000 units with a per-user limit of 2; the demo prints what happened.
 */
import { createEngine, loadConfig } from '../engine/index.js';
import type { ReserveRequest } from '../engine/index.js';

const engine = await createEngine({ config: loadConfig() });
try {
  await engine.defineSku({ sku: 'demo', stock: 1_000, perUserLimit: 2, price: 1999, name: 'Demo tee' });
  const requests: ReserveRequest[] = [];
  for (let i = 0; i < 5_000; i++) {
    requests.push({ sku: 'demo', userId: `buyer-${i % 400}`, qty: 1, idempotencyKey: `attempt-${i}` });
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
  console.log(`5,000 attempts in ${ms.toFixed(1)} ms on ${engine.shardCount} shards:`, Object.fromEntries(outcomes));
  console.log('SKU now:', await engine.getSku('demo'));
} finally {
  await engine.close();
}
