/**
 * `startGateway`: the HTTP and WebSocket server in front of an engine.
 *
 *   threads = 1 (default):   main thread: uWS App + EngineService ──▶ engine shard workers
 *   threads = N:             main thread: App #0 + EngineService + GatewayHost
 *                            gateway worker k (1..N-1): App #k + RemoteLink ──▶ main thread
 *
 * The Apps listen on the same port (`threadPorts: shared`; uWS sets SO_REUSEPORT and the kernel
 * spreads connections) or on consecutive ports (`consecutive`, for a load balancer in front).
 * The engine stays on the main thread because it is an
 * in-process library with one owner per shard worker; gateway workers forward validated
 * reservations to it in binary batches (messages.ts). On 2 cores one thread is the faster
 * default (see docs/http-api.md, "Threads"): a second App costs a thread hop per batch and
 * competes with the shard workers for the same cores.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Engine, StockadeConfig } from '../engine/index.js';
import { noAudit } from './ports.js';
import type { AuditSink } from './ports.js';
import { GatewayApp } from './app.js';
import { noCatalog } from './catalog-link.js';
import type { CatalogLink } from './catalog-link.js';
import { EngineService } from './engine-service.js';
import { GatewayHost } from './gateway-host.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';

export interface GatewayOptions {
  /** The engine, or a promise of it: routes answer `not_ready` (503) until it resolves. */
  engine: Engine | Promise<Engine>;
  /** The configuration (its `gateway` section); usually the engine's own `engine.config`. */
  config: StockadeConfig;
  logger?: Logger;
  /**
   * Receives one entry per purchase decision (rejections included), reservation transition and
   * admin call, from every gateway thread; default `noAudit` (nothing is built). A sink with
   * `stats` (`MongoAuditLog`) has them on /metrics. The caller closes it after `close()`.
   */
  audit?: AuditSink;
  /**
   * Products and moderation (`CatalogService`, catalog.ts), served by every gateway thread;
   * default: none (their routes answer 503). The caller closes what it opened after `close()`.
   */
  catalog?: CatalogLink;
  /**
   * With `gateway.rateLimitStore = redis`: the URL of the module that opens the shared limiter
   * (it exports `openSharedLimiter`; see rate-limiter.ts). `stockade serve` gives the Redis one
   * of persistence/stores/.
   */
  sharedLimiterModule?: string;
}

export interface Gateway {
  /** The port listened on (useful with `gateway.port = 0`). */
  readonly port: number;
  /** Every gateway thread's port, main thread first (all equal with threadPorts `shared`). */
  readonly ports: readonly number[];
  readonly threads: number;
  /** The main thread's service (metrics, tracked SKUs); for tests and embedding. */
  readonly service: EngineService;
  /**
   * Graceful stop: readiness goes false, listeners close, in-flight requests are answered,
   * then every connection is closed. Does not close the engine (its owner does).
   */
  close(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const config = options.config;
  const g = config.gateway;
  const log = options.logger ?? createLogger(config.log.level);
  const audit = options.audit ?? noAudit;
  const service = new EngineService(
    options.engine,
    g.skusTrackedMax,
    (err) => log.error({ err }, 'engine'),
    audit,
  );
  const sharedLimiterModule = options.sharedLimiterModule ?? null;
  const main = new GatewayApp({
    config,
    link: service,
    metrics: service.metrics,
    log,
    thread: 0,
    audit,
    sharedLimiterModule,
  });
  const catalog = options.catalog ?? noCatalog();
  main.ctx.catalog = catalog;
  // One thread, or one port per thread: bind exclusively, so a second server started on the
  // same port fails instead of silently sharing it. Threads sharing a port need SO_REUSEPORT,
  // which uWS sets only for a fixed port: check the port is free (or pick one) first.
  const shared = g.threads > 1 && g.threadPorts === 'shared';
  const port = await main.listen(g.host, shared ? await freePort(g.host, g.port) : g.port, !shared);
  const host = new GatewayHost({
    service,
    config,
    log,
    audit: audit === noAudit ? null : audit,
    catalog,
    sharedLimiterModule,
  });
  let ports: number[];
  try {
    ports = [port, ...(await host.start(g.threads - 1, port, g.threadPorts === 'consecutive'))];
  } catch (err) {
    main.stopListening();
    await main.closeAll();
    await host.close();
    throw threadError(config, port, err as Error);
  }
  void service.engineReady.then(
    () => host.setReady(true),
    () => {},
  );
  const summary = startSummaryLog(service, log);
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      service.setDraining();
      host.setReady(false);
      main.stopListening();
      await Promise.all([main.ctx.whenIdle(), host.drain()]);
      clearInterval(summary);
      await Promise.all([main.closeAll(), host.close()]);
    })());
  return { port, ports, threads: g.threads, service, close };
}

function threadError(config: StockadeConfig, port: number, err: Error): Error {
  const how = config.gateway.threadPorts === 'shared' ? `port ${port}` : `port ${port} + k`;
  return new Error(`gateway threads could not listen on ${how}: ${err.message}`, { cause: err });
}

/**
 * Resolves with `port` when nothing holds it (or with a free port for 0), by binding it
 * exclusively for a moment with node:net. A shared (SO_REUSEPORT) bind would otherwise succeed
 * next to another process already serving there — two engines selling the same stock.
 */
function freePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) =>
      reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`)),
    );
    probe.listen({ host, port, exclusive: true }, () => {
      const bound = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(bound));
    });
  });
}
/** One info line per 10 s with traffic: the summary that replaces per-request info logs. */
function startSummaryLog(service: EngineService, log: Logger): NodeJS.Timeout {
  let last = 0;
  const timer = setInterval(() => {
    if (!log.isLevelEnabled('info')) return;
    void service.clusterStats().then((s) => {
      if (s.attemptsPerS === 0 && last === 0) return;
      last = s.attemptsPerS;
      log.info(
        {
          purchasesPerS: s.purchasesPerS,
          attemptsPerS: s.attemptsPerS,
          rejections: s.rejections,
          latencyMs: s.latencyMs,
        },
        'traffic',
      );
    });
  }, 10_000);
  timer.unref();
  return timer;
}
