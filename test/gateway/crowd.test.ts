// `stockade crowd` (npm run crowd): its flags and bounds, and a crowd that sells a sale out
// with the server counting the same (the dashboard test watches one in Chromium).
import t from 'tap';
import { PassThrough } from 'node:stream';
import { crowdCommand } from '../../cli/crowd.js';
import { closedPort } from '../persistence/store-helpers.js';
import { request, startServer } from './helpers.js';

function sink() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString()));
  return { s, text: () => text };
}

t.test('flags: --help, bounds, a bad URL', async (t) => {
  const out = sink();
  t.equal(await crowdCommand(['--help'], out.s), 0);
  t.match(out.text(), /usage: stockade crowd/);
  for (const [argv, why] of [
    [['--buyers', '0'], /--buyers must be an integer from 1 to 1000000, not '0'/],
    [['--concurrency', '5000'], /--concurrency must be an integer from 1 to 1024/],
    [['--tries', '1.5'], /--tries must be an integer/],
    [['--url', 'ftp://x'], /--url must be http\(s\)/],
    [['--sku', 'a b'], /--sku 'a b' is not a SKU id/],
    [['--nope'], /Unknown option '--nope'/],
  ] as const) {
    const err = sink();
    t.equal(await crowdCommand([...argv], sink().s, { err: err.s }), 2, argv.join(' '));
    t.match(err.text(), why);
  }
});

t.test('no server: exit 1, saying where it looked', async (t) => {
  const err = sink();
  const url = `http://127.0.0.1:${await closedPort()}`;
  t.equal(await crowdCommand(['--url', url], sink().s, { err: err.s }), 1);
  t.match(err.text(), `no sale 'demo' at ${url} (is the server running? npm start)`);
});

t.test('a crowd sells a sale out, and only it', async (t) => {
  const s = await startServer({ gateway: { rateLimitPerS: 0 } });
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/tee`, 'PUT', { stock: 300, perUserLimit: 2 });
  const out = sink();
  const argv = ['--url', s.url, '--sku', 'tee', '--buyers', '200', '--tries', '3'];
  t.equal(await crowdCommand([...argv, '--concurrency', '8'], out.s), 0);
  t.comment(out.text().trim());
  t.match(out.text(), /600 purchases in [\d.]+ s .*300 sold, refused \{.*"sold_out":\d+/);
  t.match(out.text(), /"limit_exceeded":\d+/, "a buyer's third try is over the per-user limit");
  t.match(out.text(), /sale 'tee': 0 available, 300 held, 0 sold of 300 — sold out/);
});
