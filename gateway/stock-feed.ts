/**
 * Live stock for WebSocket subscribers, on uWS pub/sub topics: `stock/<sku>` for one SKU,
 * `stock/*` for every SKU the gateway tracks, and `stats` for the dashboard's figures.
 *
 * Why polling `getSku` and not `engine.subscribe()` events: events cost on the hot path (with a
 * subscriber, every shard batch sends its events to the main thread as objects — one per
 * reservation), and a subscriber that falls behind is ended. A poll costs one `getSku` per
 * subscribed SKU per tick, whatever the purchase rate, nothing when nobody subscribes, and is
 * coalesced by construction: at most `wsStockUpdatesPerS` updates per SKU per second, and none
 * when the SKU's `seq` did not move. Each gateway thread polls for its own subscribers (uWS
 * topics are per App).
 *
 *   timer (N/s, only while subscribed) ─▶ getSku(each subscribed SKU) ─▶ seq moved? ─▶ publish
 */
import type { TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import type { SkuSnapshot } from '../engine/index.js';
import type { EngineLink } from './engine-link.js';

export const ALL_SKUS = '*';

export function stockMessage(s: SkuSnapshot): string {
  return JSON.stringify({
    type: 'stock',
    sku: s.sku,
    name: s.name,
    available: s.available,
    reserved: s.reserved,
    sold: s.sold,
    stock: s.initialStock + s.restocked,
    closed: s.closed,
    startsAt: s.startsAt,
    endsAt: s.endsAt,
    seq: s.seq,
  });
}

export class StockFeed {
  /** Subscribers per SKU on this thread (`*` counts the all-SKUs subscribers). */
  private readonly counts = new Map<string, number>();
  private readonly lastSeq = new Map<string, number>();
  private statsSubscribers = 0;
  private stockTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;

  constructor(
    private readonly app: TemplatedApp,
    private readonly link: EngineLink,
    private readonly updatesPerS: number,
    private readonly onError: (err: unknown) => void,
    /** Where the sum of `counts` is shown (/metrics' stockade_ws_stock_subscriptions). */
    private readonly metrics: { wsStockSubscriptions: number },
  ) {}

  /** Counts a new subscription to `sku` (or `*`); the caller has subscribed the socket. */
  added(sku: string): void {
    this.counts.set(sku, (this.counts.get(sku) ?? 0) + 1);
    this.metrics.wsStockSubscriptions++;
    this.stockTimer ??= setInterval(this.poll, Math.ceil(1000 / this.updatesPerS));
  }

  removed(sku: string): void {
    const had = this.counts.get(sku) ?? 0;
    if (had === 0) return;
    this.metrics.wsStockSubscriptions--;
    const n = had - 1;
    if (n > 0) {
      this.counts.set(sku, n);
      return;
    }
    this.counts.delete(sku);
    if (sku !== ALL_SKUS) this.lastSeq.delete(sku);
    if (this.counts.size === 0 && this.stockTimer !== null) {
      clearInterval(this.stockTimer);
      this.stockTimer = null;
      this.lastSeq.clear();
    }
  }

  statsAdded(): void {
    this.statsSubscribers++;
    this.statsTimer ??= setInterval(this.publishStats, 1000);
  }

  statsRemoved(): void {
    if (--this.statsSubscribers > 0 || this.statsTimer === null) return;
    clearInterval(this.statsTimer);
    this.statsTimer = null;
  }

  /** The current stock messages for a new subscription to `sku` (or `*`), for that socket. */
  async firstSnapshots(sku: string): Promise<string[]> {
    const skus = sku === ALL_SKUS ? await this.link.trackedSkus() : [sku];
    const snaps = await Promise.all(skus.map((one) => this.link.getSku(one).catch(() => null)));
    const out: string[] = [];
    for (const s of snaps) if (s !== null) out.push(stockMessage(s));
    return out;
  }

  private readonly poll = (): void => {
    // A slow engine must not pile up polls: skip a tick while the last one is still out.
    if (this.polling || this.closed) return;
    this.polling = true;
    this.pollOnce()
      .catch(this.onError)
      .finally(() => (this.polling = false));
  };

  private async pollOnce(): Promise<void> {
    const skus = new Set<string>();
    for (const sku of this.counts.keys()) if (sku !== ALL_SKUS) skus.add(sku);
    if (this.counts.has(ALL_SKUS)) for (const sku of await this.link.trackedSkus()) skus.add(sku);
    const snaps = await Promise.all(
      [...skus].map((sku) => this.link.getSku(sku).catch(() => null)),
    );
    if (this.closed) return;
    for (const s of snaps) {
      if (s === null || this.lastSeq.get(s.sku) === s.seq) continue;
      this.lastSeq.set(s.sku, s.seq);
      const msg = stockMessage(s);
      this.app.publish(`stock/${s.sku}`, msg);
      this.app.publish(`stock/${ALL_SKUS}`, msg);
    }
  }

  private readonly publishStats = (): void => {
    if (this.closed) return;
    this.link.clusterStats().then((stats) => {
      if (!this.closed) this.app.publish('stats', JSON.stringify({ type: 'stats', ...stats }));
    }, this.onError);
  };

  close(): void {
    this.closed = true;
    if (this.stockTimer !== null) clearInterval(this.stockTimer);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.stockTimer = null;
    this.statsTimer = null;
  }
}
