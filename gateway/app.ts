/**
 * One uWS App with every route, for one gateway thread (the main thread or a gateway worker).
 * Several Apps can listen on the same port: uWS sets SO_REUSEPORT on a listen socket with a
 * fixed port (not on port 0) unless told `LIBUS_LISTEN_EXCLUSIVE_PORT`, so each thread binds the
 * port itself and the kernel spreads new connections among them.
 */
import { performance } from 'node:perf_hooks';
import { uws } from './uws.js';
import type { TemplatedApp, WebSocket, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
import type { StockadeConfig } from '../config/index.js';
import { createVerifier } from './auth.js';
import { GatewayContext } from './context.js';
import type { ContextOptions } from './context.js';
import { createRateLimiter, loadSharedLimiter } from './rate-limiter.js';
import type { RateLimiter } from './rate-limiter.js';
import { registerHttpRoutes } from './routes.js';
import { StockFeed } from './stock-feed.js';
import { registerWsRoutes } from './ws-routes.js';
import type { WsSession } from './ws-routes.js';

/**
 * `App.close()` (closes every socket) and `listen(host, port, options, cb)` exist in uWS.js
 * 20.30 but are missing from its types.
 */
type ClosableApp = TemplatedApp & { close?: () => void };
type ListenWithOptions = {
  listen(
    host: string,
    port: number,
    options: number,
    cb: (ls: us_listen_socket | false) => void,
  ): void;
};

/** How long a graceful stop waits for replies queued for slow WebSocket readers. */
const WS_FLUSH_MS_MAX = 3000;

/** What one gateway thread's App is made of. */
export interface GatewayAppOptions extends ContextOptions {
  /** The module of the shared (Redis) limiter (see `loadSharedLimiter`); null without one. */
  sharedLimiterModule: string | null;
}

export class GatewayApp {
  readonly app: ClosableApp;
  readonly ctx: GatewayContext;
  readonly feed: StockFeed;
  private readonly sockets = new Set<WebSocket<WsSession>>();
  private listenSocket: us_listen_socket | null = null;
  private readonly sharedLimiterModule: string | null;

  constructor(options: GatewayAppOptions) {
    const { config, link, metrics, log } = options;
    const g = config.gateway;
    this.sharedLimiterModule = options.sharedLimiterModule;
    this.ctx = new GatewayContext(options, createVerifier(g), localLimiter(config));
    this.app = uws().App();
    this.feed = new StockFeed(this.app, link, {
      updatesPerS: g.wsStockUpdatesPerS,
      skusMax: g.skusTrackedMax,
      onError: (err) => log.warn({ err }, 'stock feed'),
      metrics,
    });
    registerWsRoutes(this.app, this.ctx, this.feed, this.sockets);
    registerHttpRoutes(this.app, this.ctx);
  }

  /**
   * Listens on host:port (0 = any free port); resolves with the port. `exclusive` refuses a
   * port another socket holds; without it uWS sets SO_REUSEPORT (for a fixed port), so several
   * gateway threads can bind the same one and the kernel spreads connections among them.
   */
  async listen(host: string, port: number, exclusive: boolean): Promise<number> {
    const shared = await this.sharedLimiter();
    if (shared !== null) {
      // It connects first, briefly, so the first buyers meet the shared buckets rather than
      // the local fallback.
      await shared.connected?.(2000);
      this.ctx.limiter = shared;
    }
    return new Promise((resolve, reject) => {
      const done = (ls: us_listen_socket | false) => {
        if (!ls) {
          reject(
            new Error(
              `cannot listen on ${host}:${port} (in use, or not an address of this machine)`,
            ),
          );
          return;
        }
        this.listenSocket = ls;
        resolve(uws().us_socket_local_port(ls));
      };
      const exclusiveFlag = (uws() as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number })
        .LIBUS_LISTEN_EXCLUSIVE_PORT;
      if (exclusive)
        (this.app as unknown as ListenWithOptions).listen(host, port, exclusiveFlag, done);
      else this.app.listen(host, port, done);
    });
  }

  /** Stops accepting connections; open ones keep being served (and are told to close). */
  stopListening(): void {
    this.ctx.draining = true;
    if (this.listenSocket !== null) {
      uws().us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /**
   * Ends every WebSocket and closes every remaining connection. Replies still queued in uWS for
   * a client that reads slowly are sent first (for at most `WS_FLUSH_MS_MAX`): `App.close()`
   * drops a socket's queued bytes, and with them the answers to purchases already decided.
   */
  async closeAll(): Promise<void> {
    this.feed.close();
    const deadline = performance.now() + WS_FLUSH_MS_MAX;
    while (this.anyQueued() && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    for (const ws of [...this.sockets]) ws.end(1001, 'server shutting down');
    this.app.close?.();
    this.ctx.limiter.close?.();
  }

  /**
   * One bucket per user in the shared store, at the full rate for every thread and node, with
   * this thread's local buckets as its fallback while the store is unreachable; null when the
   * configuration keeps the buckets in memory.
   */
  private async sharedLimiter(): Promise<RateLimiter | null> {
    const { config, log, metrics } = this.ctx;
    const g = config.gateway;
    if (g.rateLimitPerS === 0 || g.rateLimitStore === 'memory') return null;
    if (this.sharedLimiterModule === null) {
      throw new Error(
        "gateway.rateLimitStore is 'redis', but the gateway was started without " +
          'sharedLimiterModule (stockade serve provides the Redis one)',
      );
    }
    return loadSharedLimiter(this.sharedLimiterModule, {
      url: config.redis.url,
      perS: g.rateLimitPerS,
      burst: g.rateLimitBurst,
      fallback: this.ctx.limiter,
      onError: (err) => log.warn({ err }, 'redis rate limiter: using the local buckets'),
      onFallback: () => metrics.rateLimitFallbacks++,
    });
  }

  /** Whether some WebSocket still has bytes queued in uWS (past what the kernel took). */
  private anyQueued(): boolean {
    for (const ws of this.sockets) if (ws.getBufferedAmount() > 0) return true;
    return false;
  }
}

/**
 * This thread's in-process buckets. With several gateway threads each keeps its own; the kernel
 * spreads a user's connections over threads, so each thread refills at its share of the rate.
 */
function localLimiter(config: StockadeConfig): RateLimiter {
  const g = config.gateway;
  const share = g.threads;
  return createRateLimiter(
    g.rateLimitPerS / share,
    Math.max(1, Math.ceil(g.rateLimitBurst / share)),
    g.rateLimitUsersMax,
  );
}
