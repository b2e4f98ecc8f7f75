/**
 * The ceiling of the benchmarks: a bare uWS server doing what the purchase route does at the
 * HTTP level and nothing else — read the body (with onAborted), JSON.parse it, check the field
 * types, and answer 201 with a reservation-sized JSON body. No engine, no auth, no limits, no
 * stock: it sells nothing, so it has nothing to oversell. `GET /v1/skus/{sku}` answers a
 * snapshot-sized body from memory.
 *
 * With `--noop` it answers every request (and every WebSocket message on `/v1/ws`) at once with
 * a fixed body and parses nothing: the server the suite measures its load generators against
 * (their own ceiling).
 *
 * Run as its own process: `node dist/bench/baselines/bare-uws.js [--port N] [--noop]`; prints
 * `listening <port>`.
 */
import { parseArgs } from 'node:util';
import uWS from '@trufflesuite/uws-js-unofficial';
import { parseObject, readBody } from './sale-http.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, noop: { type: 'boolean', default: false } },
});
let next = 0;

const app = uWS.App();
if (values.noop) {
  // WebSocket clients' ceiling: every message answered at once with a fixed reply.
  app.ws('/v1/ws', {
    message: (ws) => {
      ws.send('{"type":"reserved"}');
    },
  });
  app.any('/*', (res) => {
    res.onAborted(() => {});
    res.onData(() => {});
    res.cork(() => res.writeStatus('201 Created').end('{"status":"ok"}'));
  });
} else {
  app.post('/v1/skus/:sku/reservations', (res, req) => {
    const sku = req.getParameter(0) ?? '';
    readBody(res, (text) => {
      const body = parseObject(text);
      const ok =
        body !== null &&
        typeof body.userId === 'string' &&
        typeof body.qty === 'number' &&
        typeof body.idempotencyKey === 'string';
      res.cork(() => {
        if (!ok) {
          res
            .writeStatus('400 Bad Request')
            .writeHeader('Content-Type', 'application/json')
            .end('{"error":{"code":"invalid"}}');
          return;
        }
        const n = ++next;
        res
          .writeStatus('201 Created')
          .writeHeader('Content-Type', 'application/json')
          .end(
            `{"status":"reserved","reservationId":"${sku}:${n}","sku":"${sku}","qty":${body.qty as number},` +
              `"expiresAt":${Date.now() + 600_000},"duplicate":false}`,
          );
      });
    });
  });
  app.get('/v1/skus/:sku', (res, req) => {
    const sku = req.getParameter(0) ?? '';
    res.cork(() =>
      res
        .writeHeader('Content-Type', 'application/json')
        .end(
          `{"sku":"${sku}","stock":1000000,"available":${1_000_000 - (next % 1_000_000)},` +
            `"reserved":0,"sold":${next % 1_000_000},"closed":false}`,
        ),
    );
  });
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  });
}

app.listen('127.0.0.1', Number(values.port), (ls) => {
  if (!ls) {
    process.stderr.write(`bare-uws: cannot listen on port ${values.port}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${uWS.us_socket_local_port(ls)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
