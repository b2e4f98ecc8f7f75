/**
 * Live stock for WebSocket subscribers, on uWS pub/sub topics: `stock/<sku>` for one SKU,
 * `stock/*` for every SKU the gateway tracks, and `stats` for the dashboard's figures.
 *
 * Why polling and not `engine.subscribe()` events: events cost on the hot path (with a
 * subscriber, every shard batch sends its events to the main thread as objects — one per
 * reservation), and a subscriber that falls behind is ended. A poll costs one `getSkus` per tick
 * (one control call per shard, however many SKUs), whatever the purchase rate and however many
 * sockets subscribe, nothing when nobody subscribes, and is coalesced by construction: at most
 * `wsStockUpdatesPerS` updates per SKU per second, and none when the SKU's `seq` did not move.
 * Its cost is bounded by the SKUs it follows: only SKUs that exist are subscribed to (see
 * ws-routes.ts), and at most `skusMax` of them. Each gateway thread polls for its own
 * subscribers (uWS topics are per App).
 *
 *   timer (N/s, only while subscribed) ─▶ getSkus(every followed SKU) ─▶ seq moved? ─▶ publish
 *
 * Each `seq` of a SKU reaches a socket once: a new subscriber's first snapshot is sent to it
 * alone only when the poll has published that same `seq` already, and is published to every
 * follower when the poll has not published the SKU yet.
 */
import type { TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import type { SkuSnapshot } from '../engine/index.js';
import type { EngineLink } from './engine-link.js';

export const ALL_SKUS = '*';

/** The feed shows the SKUs it can while a shard restarts, rather than none. */
const SKIP_DOWN = { skipUnavailable: true } as const;

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

export interface StockFeedOptions {
  /** At most this many updates per SKU per second (changes in between are coalesced). */
  updatesPerS: number;
  skusMax: number;
  onError: (err: unknown) => void;
  metrics: { wsStockSubscriptions: number };
}

export class StockFeed {
  /** Subscribers per SKU on this thread (`*` counts the all-SKUs subscribers). */
  private readonly counts = new Map<string, number>();
  /** The last `seq` published (or sent as a first snapshot) per followed SKU. */
  private readonly lastSeq = new Map<string, number>();
  private statsSubscribers = 0;
  private stockTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;

  private readonly updatesPerS: number;
  /** SKUs (and `*`) followed at most: past it a subscription to a new one is refused. */
  readonly skusMax: number;
  private readonly onError: (err: unknown) => void;
  /** Where the sum of `counts` is shown (/metrics' stockade_ws_stock_subscriptions). */
  private readonly metrics: { wsStockSubscriptions: number };

  constructor(
    private readonly app: TemplatedApp,
    private readonly link: EngineLink,
    options: StockFeedOptions,
  ) {
    this.updatesPerS = options.updatesPerS;
    this.skusMax = options.skusMax;
    this.onError = options.onError;
    this.metrics = options.metrics;
  }

  /** Whether a subscription to `sku` (or `*`) fits under `skusMax`. */
  hasRoomFor(sku: string): boolean {
    return this.counts.has(sku) || this.counts.size < this.skusMax;
  }

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
    // Forget the last seq of a SKU nobody follows any more (its subscribers through `*` still
    // have it): a new follower then gets the SKU published afresh.
    if (sku === ALL_SKUS) {
      for (const one of this.lastSeq.keys()) if (!this.counts.has(one)) this.lastSeq.delete(one);
    } else if (!this.counts.has(ALL_SKUS)) {
      this.lastSeq.delete(sku);
    }
    if (this.counts.size === 0 && this.stockTimer !== null) {
      clearInterval(this.stockTimer);
      this.stockTimer = null;
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

  /**
   * Gives a socket that has just subscribed to `sku` (or `*`), and already followed `had`, the
   * snapshots it lacks, each `seq` once (see the file comment): one the poll has already
   * published goes to this socket only (`deliver`); one the poll has not published yet is
   * published to its topics now, so that every follower (this socket among them) gets it
   * once; one whose `seq` moved since the last publish is left to the next poll.
   */
  async sendFirstSnapshots(
    sku: string,
    had: ReadonlySet<string>,
    deliver: (msg: string) => void,
  ): Promise<void> {
    const skus = sku === ALL_SKUS ? await this.link.trackedSkus() : [sku];
    const snaps = await this.link.getSkus(skus, SKIP_DOWN);
    // With `*` the socket already has every tracked SKU (and so this one, if tracked).
    const tracked =
      sku !== ALL_SKUS && had.has(ALL_SKUS) ? new Set(await this.link.trackedSkus()) : null;
    if (this.closed) return;
    for (const s of snaps) {
      if (s === null || had.has(s.sku) || tracked?.has(s.sku) || !this.follows(s.sku)) continue;
      const last = this.lastSeq.get(s.sku);
      if (last === undefined) this.publish(s);
      else if (last === s.seq) deliver(stockMessage(s));
      // else: the poll publishes it (seq moved), or did (this one is older).
    }
  }

  private publish(s: SkuSnapshot): void {
    this.lastSeq.set(s.sku, s.seq);
    const msg = stockMessage(s);
    this.app.publish(`stock/${s.sku}`, msg);
    this.app.publish(`stock/${ALL_SKUS}`, msg);
  }

  private follows(sku: string): boolean {
    return this.counts.has(sku) || this.counts.has(ALL_SKUS);
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
    if (skus.size === 0) return;
    const snaps = await this.link.getSkus([...skus], SKIP_DOWN);
    if (this.closed) return;
    for (const s of snaps) {
      // seq only moves forward: never publish one a subscriber already has, or an older one.
      if (s !== null && s.seq > (this.lastSeq.get(s.sku) ?? -1)) this.publish(s);
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
