/**
 * The engine as a gateway worker thread sees it: an `EngineLink` over the worker's port to the
 * main thread. Reservations are batched per event-loop turn into one binary message; other
 * calls are structured messages answered by id. See messages.ts for the wire.
 */
import type { MessagePort } from 'node:worker_threads';
import type { CatalogMethod } from './catalog-link.js';
import type { ClusterView, GetSkusOptions, ReserveRequest } from '../engine/index.js';
import { wanted } from './engine-link.js';
import type {
  CallMethod,
  EngineLink,
  GatewayRejection,
  ReserveOutcome,
  ReserveWaiter,
} from './engine-link.js';
import { NOT_READY, refusal } from './engine-link.js';
import type { GatewayCode } from './errors.js';
import { codeInfo } from './errors.js';
import type { IntervalStats } from './metrics.js';
import { RESULT_CODES, RESULT_STRIDE, ReserveBatchWriter } from './messages.js';
import type { MainToWorker, WorkerToMain } from './messages.js';

interface PendingBatch {
  waiters: ReserveWaiter[];
  skus: string[];
  qtys: number[];
}

/** A reservation result rebuilt on the worker side, with the engine's `Reserved` shape. */
class RemoteReserved {
  readonly status = 'reserved' as const;
  constructor(
    readonly reservationId: string,
    readonly sku: string,
    readonly qty: number,
    readonly expiresAt: number,
    readonly duplicate: boolean,
  ) {}
}

/** Spare request buffers, returned by the main thread with each answer. */
const SPARES_MAX = 8;

export class RemoteLink implements EngineLink {
  ready = false;
  private readonly writer = new ReserveBatchWriter();
  /** This turn's requests, encoded at the flush (a client may go away before it). */
  private queued: ReserveRequest[] = [];
  private queuedWaiters: ReserveWaiter[] = [];
  private readonly inFlight = new Map<number, PendingBatch>();
  private readonly calls = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private readonly spares: ArrayBuffer[] = [];
  private nextId = 1;
  private scheduled = false;

  constructor(private readonly port: MessagePort) {}

  private post(msg: WorkerToMain, transfer?: ArrayBuffer[]): void {
    this.port.postMessage(msg, transfer);
  }

  reserve(request: ReserveRequest, waiter: ReserveWaiter): void {
    if (!this.ready) return waiter.settle(NOT_READY);
    this.queued.push(request);
    this.queuedWaiters.push(waiter);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const { reqs, waiters } = wanted(this.queued, this.queuedWaiters);
    this.queued = [];
    this.queuedWaiters = [];
    if (reqs.length === 0) return;
    const batch: PendingBatch = {
      waiters,
      skus: new Array<string>(reqs.length),
      qtys: new Array<number>(reqs.length),
    };
    for (let i = 0; i < reqs.length; i++) {
      this.writer.add(reqs[i]);
      batch.skus[i] = reqs[i].sku;
      batch.qtys[i] = reqs[i].qty;
    }
    const id = this.nextId++;
    const { buffer, bytes, count } = this.writer.take(this.spares.pop());
    this.inFlight.set(id, batch);
    this.post({ kind: 'reserve', id, buffer, bytes, count }, [buffer]);
  };

  /** Handles a message from the main thread; false when it is not this link's. */
  onMessage(msg: MainToWorker): boolean {
    switch (msg.kind) {
      case 'ready':
        this.ready = msg.ready;
        return true;
      case 'reserved':
        this.onReserved(msg.id, new Float64Array(msg.words), msg.details);
        if (this.spares.length < SPARES_MAX) this.spares.push(msg.buffer);
        return true;
      case 'reply': {
        const call = this.calls.get(msg.id);
        if (!call) return true;
        this.calls.delete(msg.id);
        if (msg.error)
          call.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
        else call.resolve(msg.value);
        return true;
      }
      default:
        return false;
    }
  }

  private onReserved(id: number, words: Float64Array, details: (string | number | null)[]): void {
    const p = this.inFlight.get(id);
    if (!p) return;
    this.inFlight.delete(id);
    const extra = new Map<number, GatewayRejection>();
    for (let i = 0; i < details.length; i += 3) {
      const at = details[i] as number;
      const code = RESULT_CODES[words[at * RESULT_STRIDE] & 0xff] as GatewayCode;
      const field = (details[i + 1] as string | null) ?? undefined;
      const state = (details[i + 2] as string | null) ?? undefined;
      extra.set(at, { status: code, retriable: codeInfo(code).retriable, field, state });
    }
    for (let i = 0, o = 0; i < p.waiters.length; i++, o += RESULT_STRIDE) {
      const word = words[o];
      const code = word & 0xff;
      let r: ReserveOutcome;
      if (code === 0) {
        const sku = p.skus[i];
        r = new RemoteReserved(
          `${sku}:${words[o + 1]}`,
          sku,
          p.qtys[i],
          words[o + 2],
          (word & 256) !== 0,
        );
      } else {
        const name = RESULT_CODES[code] as GatewayCode;
        r = extra.get(i) ?? refusal(name, codeInfo(name).retriable);
      }
      p.waiters[i].settle(r);
    }
  }

  /** A call on the main thread, answered by a `reply` with the same id. */
  private send<T>(msg: WorkerToMain & { kind: 'call' }, transfer?: ArrayBuffer[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.calls.set(msg.id, { resolve: resolve as (v: unknown) => void, reject });
      this.post(msg, transfer);
    });
  }

  private call<T>(method: CallMethod, args: unknown[]): Promise<T> {
    return this.send<T>({ kind: 'call', id: this.nextId++, target: 'engine', method, args });
  }

  /**
   * A call on the main thread's catalog (see `RemoteCatalog` in catalog.ts). Image bytes that
   * own their whole buffer (an upload's) are transferred, not copied: they are not used on this
   * thread again.
   */
  readonly callCatalog = (method: CatalogMethod, args: unknown[]): Promise<unknown> => {
    const transfer = args.flatMap((a) =>
      a instanceof Uint8Array && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength
        ? [a.buffer as ArrayBuffer]
        : [],
    );
    const msg = { kind: 'call', id: this.nextId++, target: 'catalog', method, args } as const;
    return this.send(msg, transfer);
  };

  confirm = (id: string, owner?: string) =>
    this.call<Awaited<ReturnType<EngineLink['confirm']>>>('confirm', [id, owner]);
  cancel = (id: string, owner?: string) =>
    this.call<Awaited<ReturnType<EngineLink['cancel']>>>('cancel', [id, owner]);
  returnOrder = (id: string, owner?: string) =>
    this.call<Awaited<ReturnType<EngineLink['returnOrder']>>>('returnOrder', [id, owner]);
  getSku = (sku: string) => this.call<Awaited<ReturnType<EngineLink['getSku']>>>('getSku', [sku]);
  getSkus = (skus: string[], options?: GetSkusOptions) =>
    this.call<Awaited<ReturnType<EngineLink['getSkus']>>>('getSkus', [skus, options]);
  putSku: EngineLink['putSku'] = (def, sku, update, stock) =>
    this.call('putSku', [def, sku, update, stock]);
  restock: EngineLink['restock'] = (sku, qty) => this.call('restock', [sku, qty]);
  closeSale: EngineLink['closeSale'] = (sku) => this.call('closeSale', [sku]);
  trackedSkus = () => this.call<string[]>('trackedSkus', []);
  clusterMetrics: EngineLink['clusterMetrics'] = () => this.call('clusterMetrics', []);
  clusterStats = () => this.call<IntervalStats>('clusterStats', []);
  clusterView = () => this.call<ClusterView | null>('clusterView', []);
}
