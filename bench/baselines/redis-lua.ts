/**
 * The design most flash sales are built on: Redis holds the stock, and one Lua script per
 * purchase does the whole decision atomically — claim the idempotency key with `SET NX`, check
 * the buyer's count against the per-user limit, check and decrement the stock, remember the
 * buyer. ioredis pipelines the concurrent scripts on one connection (auto-pipelining), which is
 * the fastest way to drive a single Redis. What it does not do is make a purchase durable
 * before answering: Redis acknowledges from memory (AOF, if on, is written a second later).
 *
 * `node dist/bench/baselines/redis-lua.js [--port N]`, Redis from STOCKADE_REDIS_URL (default
 * redis://127.0.0.1:6379). Its keys live under a prefix of their own per process
 * (`bench:<pid>-<time>:`), deleted when it stops.
 */
import { Redis } from 'ioredis';
import { runBaseline } from './sale-http.js';
import type { Outcome, SaleStore, SkuCounts } from './sale-http.js';

/**
 * KEYS: the SKU's hash (available, stock, sold, limit, seq), its buyers' hash, the idempotency
 * key. ARGV: userId, qty, the key's time to live in seconds.
 * Returns {outcome, reservationId-or-''}; a rejection gives the key back, so a retry with the
 * same key is decided again (as Stockade does).
 */
export const RESERVE_LUA = `
if not redis.call('SET', KEYS[3], '', 'NX', 'EX', ARGV[3]) then
  return {'duplicate', redis.call('GET', KEYS[3])}
end
local sku = redis.call('HMGET', KEYS[1], 'available', 'limit')
if not sku[1] then
  redis.call('DEL', KEYS[3])
  return {'unknown_sku', ''}
end
local qty = tonumber(ARGV[2])
local had = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if had + qty > tonumber(sku[2]) then
  redis.call('DEL', KEYS[3])
  return {'limit_exceeded', ''}
end
if tonumber(sku[1]) < qty then
  redis.call('DEL', KEYS[3])
  return {'sold_out', ''}
end
redis.call('HINCRBY', KEYS[1], 'available', -qty)
redis.call('HINCRBY', KEYS[1], 'sold', qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
local id = tostring(redis.call('HINCRBY', KEYS[1], 'seq', 1))
redis.call('SET', KEYS[3], id, 'XX', 'KEEPTTL')
return {'reserved', id}
`;

/** How long an idempotency key is remembered: longer than any benchmark runs. */
const KEY_TTL_S = 3600;

type ReserveScript = (
  skuKey: string,
  buyersKey: string,
  idemKey: string,
  userId: string,
  qty: number,
  ttl: number,
) => Promise<[string, string]>;

/** When an answer is on disk, from the server's own persistence settings. */
async function redisDurability(redis: Redis): Promise<string> {
  const [save, aof, fsync] = await Promise.all(
    ['save', 'appendonly', 'appendfsync'].map(
      async (k) => ((await redis.config('GET', k)) as string[])[1] ?? '',
    ),
  );
  if (aof === 'yes')
    return `in Redis memory when answered; on disk by the AOF (appendfsync ${fsync}: ${
      fsync === 'always' ? 'before the answer' : 'within a second, after the answer'
    })`;
  return save
    ? `in Redis memory when answered; on disk only at the next RDB snapshot (save ${save})`
    : 'in Redis memory only (no AOF, no RDB)';
}

export async function openRedisLua(url: string): Promise<SaleStore> {
  const redis = new Redis(url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 2,
    lazyConnect: true,
  });
  await redis.connect();
  redis.defineCommand('stockadeBenchReserve', { numberOfKeys: 3, lua: RESERVE_LUA });
  const reserveScript = (redis as unknown as { stockadeBenchReserve: ReserveScript })
    .stockadeBenchReserve;
  const prefix = `bench:${process.pid}-${Date.now().toString(36)}:`;
  const skuKey = (sku: string) => `${prefix}sku:${sku}`;
  return {
    async define(sku, stock, perUserLimit) {
      await redis
        .multi()
        .del(skuKey(sku), `${skuKey(sku)}:buyers`)
        .hset(skuKey(sku), {
          stock,
          available: stock,
          sold: 0,
          limit: perUserLimit,
          seq: 0,
        })
        .exec();
    },
    async reserve(sku, userId, qty, key): Promise<Outcome> {
      const k = skuKey(sku);
      const [code, id] = await reserveScript.call(
        redis,
        k,
        `${k}:buyers`,
        `${prefix}idem:${key}`,
        userId,
        qty,
        KEY_TTL_S,
      );
      if (code === 'reserved') return { code, reservationId: `${sku}:${id}`, duplicate: false };
      // A duplicate arriving while the first is still being decided cannot happen here: the
      // script runs whole, so the key holds the id by the time anyone else reads it.
      if (code === 'duplicate')
        return { code: 'reserved', reservationId: `${sku}:${id}`, duplicate: true };
      return { code: code as 'sold_out' | 'limit_exceeded' | 'unknown_sku' };
    },
    durability: () => redisDurability(redis),
    async counts(sku): Promise<SkuCounts | null> {
      const h = await redis.hgetall(skuKey(sku));
      if (h.stock === undefined) return null;
      return { stock: Number(h.stock), available: Number(h.available), sold: Number(h.sold) };
    },
    async close() {
      // Everything this process wrote, by its own prefix, then the connection.
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      await redis.quit();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  void runBaseline('redis-lua', () =>
    openRedisLua(process.env.STOCKADE_REDIS_URL ?? 'redis://127.0.0.1:6379'),
  );
}
