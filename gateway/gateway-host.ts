/**
 * The main-thread side of the gateway workers: starts them, serves their reservation batches
 * and calls from the `EngineService`, keeps their metrics, and drains and stops them.
 *
 *   worker k ──{reserve batch}──▶ host ─▶ service.reserveBatch ─▶ {reserved words} ──▶ worker k
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { StockadeConfig } from '../config/index.js';
import type { AuditSink } from './ports.js';
import { settledWithin, spawnWorker } from '../engine/index.js';
import { CATALOG_METHODS } from './catalog-link.js';
import type { CatalogLink } from './catalog-link.js';
import { CALL_METHODS } from './engine-link.js';
import type { EngineService } from './engine-service.js';
import { codeOfError } from './engine-link.js';
import { decodeReserveBatch, encodeResults } from './messages.js';
import type { GatewayWorkerData, MainToWorker, WorkerToMain } from './messages.js';

const callable = new Set<string>(CALL_METHODS);
const catalogMethods = new Set<string>(CATALOG_METHODS);

/** What the gateway workers share: the main thread's services they reach. */
export interface GatewayHostOptions {
  service: EngineService;
  config: StockadeConfig;
  log: Logger;
  /** The main thread's audit sink, or null without one (workers then build no entries). */
  audit: AuditSink | null;
  /** The catalog the workers' product and moderation routes reach. */
  catalog: CatalogLink;
  /** See `GatewayOptions.sharedLimiterModule`. */
  sharedLimiterModule: string | null;
}

class HostedWorker {
  readonly worker: Worker;
  private drained: (() => void) | null = null;
  /** Audit entries taken from this worker, shared with its AuditForwarder; null without audit. */
  private readonly auditTaken: Int32Array | null;
  private listening: ((err: string | null, port: number) => void) | null = null;
  private readonly service: EngineService;
  private readonly log: Logger;
  private readonly audit: AuditSink | null;
  private readonly catalog: CatalogLink;

  constructor(
    readonly thread: number,
    port: number,
    exclusive: boolean,
    host: GatewayHostOptions,
  ) {
    const { config, log } = host;
    this.service = host.service;
    this.log = log;
    this.audit = host.audit;
    this.catalog = host.catalog;
    const shared = this.audit !== null ? new SharedArrayBuffer(4) : null;
    this.auditTaken = shared !== null ? new Int32Array(shared) : null;
    const workerData: GatewayWorkerData = {
      config,
      thread,
      port,
      exclusive,
      auditTaken: shared,
      catalogGatesSales: host.catalog.gatesSales,
      sharedLimiterModule: host.sharedLimiterModule,
    };
    this.worker = spawnWorker(import.meta.url, './gateway-worker.js', {
      workerData,
      name: `stockade-gateway-${thread}`,
    });
    this.worker.on('message', (msg: WorkerToMain) => this.onMessage(msg));
    this.worker.on('error', (err) => {
      log.error({ err, thread }, 'gateway worker failed');
      this.listening?.(err.message, 0);
    });
  }

  private post(msg: MainToWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(msg, transfer);
  }

  /** Resolves with the port the worker's App listens on. */
  started(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listening = (err, port) => (err === null ? resolve(port) : reject(new Error(err)));
    });
  }

  setReady(ready: boolean): void {
    this.post({ kind: 'ready', ready });
  }

  private onMessage(msg: WorkerToMain): void {
    switch (msg.kind) {
      case 'reserve': {
        const reqs = decodeReserveBatch(msg.buffer, msg.bytes, msg.count);
        void this.service.reserveBatch(reqs).then((results) => {
          const { words, details } = encodeResults(results);
          this.post(
            {
              kind: 'reserved',
              id: msg.id,
              words: words.buffer as ArrayBuffer,
              details,
              buffer: msg.buffer,
            },
            [words.buffer as ArrayBuffer, msg.buffer],
          );
        });
        return;
      }
      case 'call':
        return msg.target === 'engine'
          ? this.onCall(msg.id, this.service, callable, msg.method, msg.args)
          : this.onCall(msg.id, this.catalog, catalogMethods, msg.method, msg.args);
      case 'metrics':
        return this.service.setWorkerMetrics(this.thread, msg.snapshot);
      case 'audit': {
        const sink = this.audit;
        if (sink !== null) for (const e of msg.entries) sink.record(e);
        this.service.auditForwardDropped += msg.dropped;
        if (this.auditTaken !== null) Atomics.add(this.auditTaken, 0, msg.entries.length);
        return;
      }
      case 'listening':
        return this.listening?.(msg.error, msg.port);
      case 'drained':
        return this.drained?.();
      case 'closed':
        return;
    }
  }

  /**
   * Runs a worker's call on the engine service or the catalog, for the methods in `allowed`
   * only, and posts the reply (errors as codes: a class does not survive structured clone).
   */
  private onCall(
    id: number,
    target: object,
    allowed: ReadonlySet<string>,
    method: string,
    args: unknown[],
  ): void {
    const fn = allowed.has(method)
      ? (target as Record<string, (...a: unknown[]) => unknown>)[method]
      : undefined;
    Promise.resolve()
      .then(() => {
        if (fn === undefined) throw new Error(`no method ${method}`);
        return fn.apply(target, args);
      })
      .then(
        (value) => this.post({ kind: 'reply', id, value, error: null }),
        (err: unknown) => {
          const code = codeOfError(err);
          if (code === 'internal') this.log.error({ err, method }, 'gateway worker call failed');
          const error = { code, message: String((err as Error)?.message) };
          this.post({ kind: 'reply', id, value: null, error });
        },
      );
  }

  drain(): Promise<void> {
    return new Promise((resolve) => {
      this.drained = resolve;
      this.post({ kind: 'drain' });
    });
  }

  /** Asks the worker to close its sockets and waits for it to exit on its own. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    if (this.worker.threadId === -1) return; // already gone
    this.post({ kind: 'close' });
    if (!(await settledWithin(exited, 5000))) {
      this.log.warn({ thread: this.thread }, 'gateway worker did not exit; terminating it');
      await this.worker.terminate();
    }
  }
}

export class GatewayHost {
  private readonly workers: HostedWorker[] = [];

  constructor(private readonly options: GatewayHostOptions) {}

  /**
   * Starts `count` gateway workers: on the main thread's `port` (threadPorts `shared`), or on
   * `port + k` (`consecutive`; any free port when the main one was 0). Resolves with their ports.
   */
  async start(count: number, port: number, consecutive: boolean): Promise<number[]> {
    for (let i = 1; i <= count; i++) {
      const p = !consecutive ? port : this.options.config.gateway.port === 0 ? 0 : port + i;
      this.workers.push(new HostedWorker(i, p, consecutive, this.options));
    }
    return Promise.all(this.workers.map((w) => w.started()));
  }

  setReady(ready: boolean): void {
    for (const w of this.workers) w.setReady(ready);
  }

  async drain(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.drain()));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
