// The battery's checker, on histories made by hand: each rule it holds must be able to fail.
import t from 'tap';
import type { SkuEvent } from '../../actors/index.js';
import { History, check } from './history.js';

const at = 0;
const reserved = (reservation: number, key: string): SkuEvent => ({
  type: 'reserved',
  sku: 's',
  seq: reservation,
  at,
  reservation,
  userId: 'u',
  qty: 1,
  idempotencyKey: key,
  expiresAt: 1,
});
const ended = (type: 'confirmed' | 'cancelled' | 'expired', reservation: number): SkuEvent => ({
  type,
  sku: 's',
  seq: 100 + reservation,
  at,
  reservation,
  qty: 1,
});

function history(): History {
  const h = new History();
  h.add({ key: 'k1', sku: 's', userId: 'u', qty: 1, outcome: 'ok', detail: 's:1', at });
  h.add({ key: 'k2', sku: 's', userId: 'u', qty: 1, outcome: 'ok', detail: 's:2', at });
  return h;
}
const stock = new Map([['s', 10]]);

t.test('a hold that ends twice gives its unit back twice: a violation', async (t) => {
  const events = [reserved(1, 'k1'), reserved(2, 'k2'), ended('expired', 1), ended('expired', 1)];
  // The replay agrees with the journal's sums (2 - 2 = 0 held): only the hold rule sees it.
  const v = check(history(), events, new Map([['s', { stock: 10, reserved: 0, sold: 0 }]]), stock);
  t.match(v.violations, [/hold s:1 ended 2 times: expired, expired/]);
});

t.test('with holdsEnded, a hold that never ended is a violation', async (t) => {
  const events = [reserved(1, 'k1'), reserved(2, 'k2'), ended('confirmed', 1)];
  const replay = new Map([['s', { stock: 10, reserved: 1, sold: 1 }]]);
  t.same(check(history(), events, replay, stock).violations, [], 'without it: a pass');
  t.same(check(history(), events, replay, stock, true).violations, ['hold s:2 never ended']);
  const all = [...events, ended('expired', 2)];
  const after = new Map([['s', { stock: 10, reserved: 0, sold: 1 }]]);
  t.same(check(history(), all, after, stock, true).violations, [], 'each ended once: a pass');
});
