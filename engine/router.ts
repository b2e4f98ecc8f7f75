/**
 * SKU → shard, by a stable hash of the SKU id (FNV-1a over UTF-16 code units). Stable means the
 * same SKU lands on the same shard across restarts for the same shard count, which is what lets
 * a shard recover its SKUs from its own journal.
 */
export function shardOf(sku: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sku.length; i++) h = Math.imul(h ^ sku.charCodeAt(i), 0x01000193);
  return (h >>> 0) % shards;
}
