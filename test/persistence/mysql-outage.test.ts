// MySQL going away under a running projector (a TCP proxy in front of the real server is cut
// and restored), and the `stockade migrate` / `stockade project` commands.
import t from 'tap';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { migrateCommand, projectCommand } from '../../cli/index.js';
import { openMysqlPool } from '../../persistence/stores/index.js';
import { eventually, tempDir } from '../engine/helpers.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { differences, projector, startSale, trade } from './projection-helpers.js';
import { Collect } from './tail-helpers.js';

const ok = await requireMysql(t);

/** A TCP proxy to MySQL that the test can cut (`down`) and restore (`up`) on the same port. */
class Proxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly host: string,
    private readonly target: number,
  ) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect({ host: this.host, port: this.target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

if (ok) {
  t.test('MySQL down: the projector retries with backoff, skips nothing, converges', async (t) => {
    const s = await startSale(tempDir('stockade-proj-'), ['mug', 'tee']);
    t.teardown(() => s.engine.close());
    await trade(s, 0);
    const { url, pool: direct } = await freshDatabase(t);
    const target = new URL(url);
    const proxy = new Proxy(target.hostname, Number(target.port || 3306));
    await proxy.up();
    t.teardown(() => proxy.down());
    const proxied = new URL(url);
    proxied.port = String(proxy.port);
    const pool = openMysqlPool(proxied.toString(), { connectTimeoutMs: 500 });
    t.teardown(() => pool.end());
    const errors: string[] = [];
    let failed: () => void = () => {};
    const firstFailure = new Promise<void>((resolve) => (failed = resolve));
    const p = projector(pool, s.dir, {
      retryMsMax: 200,
      onError: (err) => {
        errors.push((err as { code?: string }).code ?? err.message);
        failed();
      },
    });
    p.start();
    t.teardown(() => p.stop());
    await eventually(
      () => p.stats().batches > 0 && p.stats().lag === 0,
      10_000,
      'the first catch-up',
    );
    const appliedBefore = p.stats().eventsApplied;

    await proxy.down();
    await trade(s, 1);
    await firstFailure;
    t.equal(errors[0], 'projection_unavailable', 'the failure is reported with its code');
    await eventually(() => p.stats().retries >= 2, 10_000, 'a second retry');
    t.ok(p.stats().lag > 0, 'while MySQL is down the lag is visible');
    t.equal(p.stats().running, true, 'the projector keeps running');

    await proxy.up();
    await eventually(() => p.stats().lag === 0 && p.stats().lastError !== null, 10_000, 'recovery');
    await eventually(() => p.stats().eventsApplied > appliedBefore, 10_000, 'new events applied');
    await p.stop();
    t.same(await differences(direct, s), [], 'MySQL matches the engine: nothing lost or doubled');
  });

  t.test('stockade migrate and stockade project --once', async (t) => {
    const s = await startSale(tempDir('stockade-proj-'), ['mug']);
    t.teardown(() => s.engine.close());
    await trade(s, 0);
    const { url, pool } = await freshDatabase(t);
    const out = new Collect();
    const err = new Collect();
    t.equal(await migrateCommand(['--mysql-url', url], out, { env: {}, err }), 0);
    t.match(out.text, /is up to date/, 'nothing to apply on a migrated database');
    const args = ['--once', '--journal', 'file', '--data-dir', s.dir, '--mysql-url', url];
    const proj = new Collect();
    t.equal(await projectCommand(args, proj, { env: {}, err }), 0, err.text);
    t.match(proj.text, /applied \d+ events/);
    t.same(await differences(pool, s), [], 'the command projected the sale');

    const down = 'mysql://stockade:x@127.0.0.1:1/stockade';
    const err2 = new Collect();
    t.equal(await migrateCommand(['--mysql-url', down], new Collect(), { env: {}, err: err2 }), 1);
    t.match(err2.text, /cannot reach MySQL at mysql:\/\/stockade@127\.0\.0\.1:1\/stockade/);
    t.notMatch(err2.text, /:x@/, 'the password is not printed');
    const err3 = new Collect();
    const bad = await migrateCommand(['--nope'], new Collect(), { env: {}, err: err3 });
    t.equal(bad, 2, 'a bad flag exits 2');
  });
}
