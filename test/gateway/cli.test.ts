import t from 'tap';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { request } from './helpers.js';
import { tempDir } from '../engine/helpers.js';
import { startCli } from '../persistence/cli-process.js';
import { silentBroker } from '../persistence/kafka-helpers.js';
import { servedShardThreads } from '../../cli/shard-threads.js';
import { loadConfig } from '../../engine/index.js';
import type { StockadeConfig } from '../../engine/index.js';

/** `stockade <args>` without the developer's STOCKADE_* settings; `exit` is the exit code. */
function start(args: string[]) {
  const p = startCli(args);
  return { ...p, exit: p.exit.then((e) => e.code) };
}

t.test('--help, unknown commands and bad flags', async (t) => {
  const help = start(['--help']);
  t.equal(await help.exit, 0);
  t.match(help.out(), /Usage: stockade <command>/);
  t.match(help.out(), /--auth MODE/);
  const serveHelp = start(['serve', '-h']);
  t.equal(await serveHelp.exit, 0);
  t.match(serveHelp.out(), /--demo/);

  const bogus = start(['serve', '--bogus']);
  t.equal(await bogus.exit, 2);
  t.match(bogus.err(), /Unknown option '--bogus'[\s\S]*stockade --help/);
  const cmd = start(['launch']);
  t.equal(await cmd.exit, 2);
  t.match(cmd.err(), /unknown command 'launch'/);
  const port = start(['serve', '--port', 'eighty', '--journal', 'none']);
  t.equal(await port.exit, 2);
  t.match(port.err(), /config\.gateway\.port must be an integer from 0 to 65535, got 'eighty'/);
  const auth = start(['serve', '--auth', 'jwt', '--journal', 'none', '--port', '0']);
  t.equal(await auth.exit, 2);
  t.match(auth.err(), /neither config\.gateway\.jwtSecret/);
});

t.test('serve --demo --auth none: the contract, then a graceful stop on SIGTERM', async (t) => {
  const p = start([
    'serve',
    '--port',
    '0',
    '--demo',
    '--auth',
    'none',
    '--journal',
    'none',
    '--shards',
    '1',
    '--log-level',
    'warn',
  ]);
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    p.child.stderr!.on('data', () => {
      const m = /serving on (http:\/\/[\d.]+:\d+)/.exec(p.err());
      if (m) resolve(m[1]);
    });
    void p.exit.then((code) => reject(new Error(`exited ${code}: ${p.err()}`)));
  });
  t.match(p.err(), /WARNING: auth is 'none'/, 'auth none says so loudly');
  await new Promise<void>((resolve) => {
    p.child.stderr!.on('data', () => /demo sale/.test(p.err()) && resolve());
    if (/demo sale/.test(p.err())) resolve();
  });
  const r = await request(`${url}/v1/skus/demo/reservations`, 'POST', {
    userId: 'u1',
    qty: 1,
    idempotencyKey: 'k1',
  });
  t.equal(r.status, 201);
  t.equal(r.body.reservationId, 'demo:1');
  const sku = await request(`${url}/v1/skus/demo`, 'GET');
  t.match(sku.body, { stock: 5_000, perUserLimit: 2, reserved: 1 });

  // An in-flight request (headers and half its body) survives the signal and is answered.
  const { port } = new URL(url);
  const sock = connect(Number(port), '127.0.0.1');
  await new Promise((res) => sock.on('connect', res));
  let reply = '';
  sock.on('data', (c: Buffer) => (reply += c.toString()));
  const body = JSON.stringify({ userId: 'u2', qty: 1, idempotencyKey: 'k2' });
  sock.write(
    `POST /v1/skus/demo/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
  );
  // Synchronize on the server's own gauge: the half request is admitted once inflight is 2
  // (the /metrics request that reads the gauge is in flight itself).
  for (let i = 0; ; i++) {
    const m = await request(`${url}/metrics`, 'GET');
    if (/^stockade_inflight_requests 2$/m.test(m.body as string)) break;
    if (i > 1000) throw new Error('the half request was never admitted');
  }
  p.child.kill('SIGTERM');
  await new Promise<void>((resolve) => {
    const check = () => /shutting down/.test(p.err()) && resolve();
    p.child.stderr!.on('data', check);
    check();
  });
  sock.write(body.slice(5));
  const closed = new Promise((res) => sock.on('close', res));
  await closed;
  t.match(reply, /^HTTP\/1\.1 201 Created/, 'the in-flight request was finished');
  t.equal(await p.exit, 0, 'exit 0 after a graceful stop');
});

t.test(
  "serve resolves engine.shardThreads 'auto': inline on one gateway thread with at most 2 CPUs",
  (t) => {
    const config = (shardThreads: 'auto' | 'workers' | 'inline', threads: number) =>
      loadConfig({ env: {}, overrides: { engine: { shardThreads }, gateway: { threads } } });
    const where = (c: StockadeConfig) => c.engine.shardThreads;
    t.equal(where(loadConfig({ env: {} })), 'auto', 'the default');
    t.equal(where(servedShardThreads(config('auto', 1), 2)), 'inline');
    t.equal(where(servedShardThreads(config('auto', 1), 1)), 'inline');
    t.equal(
      where(servedShardThreads(config('auto', 1), 4)),
      'workers',
      'more CPUs: workers, as designed',
    );
    t.equal(
      where(servedShardThreads(config('auto', 2), 2)),
      'workers',
      'several gateway threads: workers',
    );
    t.equal(
      where(servedShardThreads(config('workers', 1), 2)),
      'workers',
      'an explicit choice stays',
    );
    t.equal(
      where(servedShardThreads(config('inline', 3), 8)),
      'inline',
      'an explicit choice stays',
    );
    t.end();
  },
);

t.test(
  'serve --shard-threads: the choice is logged at start; a bad value is refused',
  async (t) => {
    for (const [flag, chosen] of [
      ['workers', 'workers'],
      ['inline', 'inline'],
    ] as const) {
      const p = start([
        'serve',
        '--port',
        '0',
        '--journal',
        'none',
        '--auth',
        'none',
        '--shard-threads',
        flag,
      ]);
      t.teardown(() => {
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      });
      const [line] = await p.waitFor(/\{[^\n]*"msg":"stockade is serving"[^\n]*\}/, 30_000);
      t.equal((JSON.parse(line) as { shardThreads: string }).shardThreads, chosen);
      p.child.kill('SIGTERM');
      t.equal(await p.exit, 0);
    }
    const bad = start(['serve', '--port', '0', '--journal', 'none', '--shard-threads', 'sideways']);
    t.equal(await bad.exit, 2);
    t.match(
      bad.err(),
      /config\.engine\.shardThreads must be one of 'auto', 'workers', 'inline', got 'sideways'/,
    );
  },
);

t.test('serve: SIGTERM while the engine is still starting stops gracefully, exit 0', async (t) => {
  // A "broker" that accepts connections and never answers: the engine's recovery waits on it
  // (for up to kafka.appendTimeoutMs), so the gateway listens with readyz 503 meanwhile.
  const broker = await silentBroker();
  t.teardown(() => broker.close());
  const free = createServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const port = (free.address() as AddressInfo).port;
  await new Promise((resolve) => free.close(resolve));
  const p = startCli(
    [
      'serve',
      '--port',
      String(port),
      '--auth',
      'none',
      '--journal',
      'kafka',
      '--kafka-brokers',
      broker.address,
      '--shards',
      '1',
    ],
    { STOCKADE_KAFKA_APPEND_TIMEOUT_MS: '60000' },
  );
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  for (let i = 0; ; i++) {
    const up = await request(`http://127.0.0.1:${port}/healthz`, 'GET').then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (i >= 200 || p.child.exitCode !== null)
      throw new Error(`the gateway never listened: ${p.err()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.match(p.out(), /gateway listening; the engine is starting/, 'the log says where the start is');
  t.equal(
    (await request(`http://127.0.0.1:${port}/readyz`, 'GET')).status,
    503,
    'not ready: the engine is recovering',
  );
  p.child.kill('SIGTERM');
  const exit = await p.exit;
  t.same(exit, { code: 0, signal: null }, 'exit 0, not killed by the signal');
  t.match(p.err(), /SIGTERM: shutting down/);
  t.match(p.out(), /"engineStarted":false/, 'it says the engine had not started');
});

t.test('a second serve on the same data directory exits with journal_locked', async (t) => {
  const dir = tempDir();
  const serve = () =>
    startCli(['serve', '--port', '0', '--auth', 'none', '--data-dir', dir, '--shards', '1']);
  const a = serve();
  t.teardown(() => {
    if (a.child.exitCode === null) a.child.kill('SIGKILL');
  });
  await a.waitFor(/serving on/, 30_000);
  const b = serve();
  const exit = await b.exit;
  t.equal(exit.code, 1, 'the second process exits');
  t.match(
    b.err(),
    new RegExp(`journal_locked: the journal directory .* is in use by pid ${a.pid}`),
  );
  // kill -9 frees the lock with the process: the next one starts at once.
  a.child.kill('SIGKILL');
  await a.exit;
  const c = serve();
  t.teardown(() => {
    if (c.child.exitCode === null) c.child.kill('SIGKILL');
  });
  await c.waitFor(/serving on/, 30_000);
  c.child.kill('SIGTERM');
  t.equal((await c.exit).code, 0);
});
