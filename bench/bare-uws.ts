/**
 * The ceiling for `npm run bench -- http`: a bare uWS server doing what the purchase route does
 * at the HTTP level and nothing else — read the body (with onAborted), JSON.parse it, check the
 * field types, and answer 201 with a reservation-sized JSON body. No engine, no auth, no limits.
 * Run as its own process: `node dist/bench/bare-uws.js [--port N]`; prints `listening <port>`.
 */
import { parseArgs } from 'node:util';
import uWS from '@trufflesuite/uws-js-unofficial';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
let next = 0;

const app = uWS.App();
app.post('/v1/skus/:sku/reservations', (res, req) => {
  const sku = req.getParameter(0) ?? '';
  let aborted = false;
  res.onAborted(() => (aborted = true));
  let chunks: Buffer[] | null = null;
  res.onData((chunk, isLast) => {
    if (!isLast) {
      (chunks ??= []).push(Buffer.from(chunk.slice(0)));
      return;
    }
    const text = chunks
      ? Buffer.concat([...chunks, Buffer.from(chunk)]).toString('utf8')
      : Buffer.from(chunk).toString('utf8');
    type Body = { userId?: unknown; qty?: unknown; idempotencyKey?: unknown };
    let body: Body | null;
    try {
      body = JSON.parse(text) as Body;
    } catch {
      body = null;
    }
    if (aborted) return;
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
          `{"status":"reserved","reservationId":"${sku}:${n}","sku":"${sku}","qty":${body!.qty as number},` +
            `"expiresAt":${Date.now() + 600_000},"duplicate":false}`,
        );
    });
  });
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end();
});

app.listen('127.0.0.1', Number(values.port), (ls) => {
  if (!ls) {
    process.stderr.write(`bare-uws: cannot listen on port ${values.port}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${uWS.us_socket_local_port(ls)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
