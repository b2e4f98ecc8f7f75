/**
 * The HTTP face every baseline of the benchmark suite shares, on uWS like Stockade's gateway, so
 * the comparison is between the designs behind it and not between HTTP stacks:
 *
 *   PUT  /v1/skus/{sku}               { stock, perUserLimit? } → 201 { status: "defined" }
 *   POST /v1/skus/{sku}/reservations  { userId, qty, idempotencyKey } → 201 { status:
 *        "reserved", reservationId, duplicate } | 409 sold_out | 409 limit_exceeded |
 *        404 unknown_sku | 422 invalid
 *   GET  /v1/skus/{sku}               → 200 { stock, available, sold }
 *   GET  /v1/outcomes                 answers to reservations by outcome, since the start
 *   GET  /v1/about                    { durability }: when an answered purchase is durable
 *
 * The same routes, bodies and codes as Stockade's (docs/http-api.md), so one load script drives
 * all of them. What is behind them is a `SaleStore`: Redis + Lua, or MySQL.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import uWS from '@trufflesuite/uws-js-unofficial';

/** A body past this is refused (413) and the connection closed: every body has a bound. */
const BODY_BYTES_MAX = 16 * 1024;

export type Outcome =
  | { code: 'reserved'; reservationId: string; duplicate: boolean }
  | { code: 'sold_out' | 'limit_exceeded' | 'unknown_sku' };

export interface SkuCounts {
  stock: number;
  available: number;
  sold: number;
}

export interface SaleStore {
  /** Defines (or redefines, for a fresh run) a SKU with its stock and per-buyer limit. */
  define(sku: string, stock: number, perUserLimit: number): Promise<void>;
  reserve(sku: string, userId: string, qty: number, idempotencyKey: string): Promise<Outcome>;
  /** When an answered purchase is durable, in words, as the store is configured right now. */
  durability(): Promise<string>;
  /** The SKU's counts, read back from the store itself; null if it was never defined. */
  counts(sku: string): Promise<SkuCounts | null>;
  close(): Promise<void>;
}

/**
 * Reads a whole body (uWS hands it over in chunks that are only valid during the callback), at
 * most BODY_BYTES_MAX, then calls `done` with its text — unless the client went away first.
 */
export function readBody(
  res: HttpResponse,
  done: (text: string, aborted: () => boolean) => void,
): void {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  let chunks: Buffer[] | null = null;
  let size = 0;
  res.onData((chunk, isLast) => {
    size += chunk.byteLength;
    if (size > BODY_BYTES_MAX) {
      if (!aborted && size - chunk.byteLength <= BODY_BYTES_MAX) {
        aborted = true;
        res.cork(() => res.writeStatus('413 Payload Too Large').end('', true));
      }
      return;
    }
    if (!isLast) {
      (chunks ??= []).push(Buffer.from(chunk.slice(0)));
      return;
    }
    const text = chunks
      ? Buffer.concat([...chunks, Buffer.from(chunk)]).toString('utf8')
      : Buffer.from(chunk).toString('utf8');
    if (!aborted) done(text, () => aborted);
  });
}

/** The parsed JSON object, or null for anything else. */
export function parseObject(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const STATUS: Record<string, string> = {
  200: '200 OK',
  201: '201 Created',
  404: '404 Not Found',
  409: '409 Conflict',
  422: '422 Unprocessable Entity',
  503: '503 Service Unavailable',
};

function answer(res: HttpResponse, status: number, body: string, aborted: () => boolean): void {
  if (aborted()) return;
  res.cork(() =>
    res.writeStatus(STATUS[status]).writeHeader('Content-Type', 'application/json').end(body),
  );
}

function errorBody(code: string): string {
  return `{"error":{"code":"${code}"}}`;
}

const isKey = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 128;
const isCount = (v: unknown, min: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** Answers to reservations by outcome (GET /v1/outcomes), the way the suite tallies rejections. */
type Tally = Record<string, number>;

/**
 * Serves `store` on 127.0.0.1:`port` (0: any free port) and resolves to the port. Errors from
 * the store answer 503 `store_unavailable` (the suite counts them; a baseline that fails under
 * load shows it).
 */
export function serveSale(store: SaleStore, port: number): Promise<number> {
  const tally: Tally = {};
  const count = (outcome: string) => (tally[outcome] = (tally[outcome] ?? 0) + 1);
  const fail = (res: HttpResponse, aborted: () => boolean) => (err: unknown) => {
    count('store_unavailable');
    process.stderr.write(`store error: ${err instanceof Error ? err.message : String(err)}\n`);
    answer(res, 503, errorBody('store_unavailable'), aborted);
  };
  const app = uWS.App();
  app.put('/v1/skus/:sku', (res: HttpResponse, req: HttpRequest) => {
    const sku = req.getParameter(0) ?? '';
    readBody(res, (text, aborted) => {
      const b = parseObject(text);
      const limit = b?.perUserLimit ?? 1_000_000_000;
      if (!b || !isKey(sku) || !isCount(b.stock, 0) || !isCount(limit, 1))
        return answer(res, 422, errorBody('invalid'), aborted);
      store
        .define(sku, b.stock, limit)
        .then(
          () => answer(res, 201, `{"status":"defined","sku":"${sku}"}`, aborted),
          fail(res, aborted),
        );
    });
  });
  app.post('/v1/skus/:sku/reservations', (res: HttpResponse, req: HttpRequest) => {
    const sku = req.getParameter(0) ?? '';
    readBody(res, (text, aborted) =>
      reserve(
        store,
        sku,
        text,
        count,
        (status, body) => answer(res, status, body, aborted),
        fail(res, aborted),
      ),
    );
  });
  readRoutes(app, store, fail);
  app.get('/v1/outcomes', (res: HttpResponse) => {
    res.cork(() =>
      res.writeHeader('Content-Type', 'application/json').end(JSON.stringify({ reserve: tally })),
    );
  });
  app.any('/*', (res: HttpResponse) => {
    res.cork(() => res.writeStatus('404 Not Found').end(errorBody('not_found')));
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', port, (ls) => {
      if (!ls) return reject(new Error(`cannot listen on 127.0.0.1:${port}`));
      resolve(uWS.us_socket_local_port(ls));
    });
  });
}

/** GET /v1/skus/{sku} (read back from the store) and GET /v1/about. */
function readRoutes(
  app: TemplatedApp,
  store: SaleStore,
  fail: (res: HttpResponse, aborted: () => boolean) => (err: unknown) => void,
): void {
  const get = (path: string, read: (req: HttpRequest) => Promise<[number, string]>) =>
    app.get(path, (res: HttpResponse, req: HttpRequest) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      read(req).then(
        ([status, body]) => answer(res, status, body, () => aborted),
        fail(res, () => aborted),
      );
    });
  get('/v1/skus/:sku', async (req) => {
    const sku = req.getParameter(0) ?? '';
    const c = await store.counts(sku);
    return c === null ? [404, errorBody('unknown_sku')] : [200, JSON.stringify({ sku, ...c })];
  });
  get('/v1/about', async () => [200, JSON.stringify({ durability: await store.durability() })]);
}

/** A purchase: checked, decided by the store, answered and counted by outcome. */
function reserve(
  store: SaleStore,
  sku: string,
  text: string,
  count: (outcome: string) => void,
  reply: (status: number, body: string) => void,
  fail: (err: unknown) => void,
): void {
  const b = parseObject(text);
  if (!b || !isKey(sku) || !isKey(b.userId) || !isCount(b.qty, 1) || !isKey(b.idempotencyKey)) {
    count('invalid');
    return reply(422, errorBody('invalid'));
  }
  const qty = b.qty;
  store.reserve(sku, b.userId, qty, b.idempotencyKey).then((o) => {
    if (o.code !== 'reserved') {
      count(o.code);
      return reply(o.code === 'unknown_sku' ? 404 : 409, errorBody(o.code));
    }
    count(o.duplicate ? 'duplicate' : 'ok');
    reply(
      201,
      `{"status":"reserved","reservationId":"${o.reservationId}","sku":"${sku}",` +
        `"qty":${qty},"duplicate":${o.duplicate}}`,
    );
  }, fail);
}

/**
 * The main of a baseline process: opens the store, serves it, prints `listening <port>`, and
 * on SIGTERM/SIGINT closes the store and exits 0.
 */
export async function runBaseline(name: string, open: () => Promise<SaleStore>): Promise<void> {
  const portFlag = process.argv.indexOf('--port');
  const port = portFlag > 0 ? Number(process.argv[portFlag + 1]) : 0;
  try {
    const store = await open();
    const stop = () => {
      store.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.stdout.write(`listening ${await serveSale(store, port)}\n`);
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
