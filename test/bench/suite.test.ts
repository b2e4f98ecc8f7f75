// `npm run bench -- all --quick`: every scenario of the suite, on every system, end to end, the
// way a user runs it (its own process, the real Redis, MariaDB and Kafka): it exits 0, the JSON
// has the fixed case names and fields scripts read, the flash sale sold exactly its stock on
// every system that keeps stock, and the markdown and charts are written.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireMysql } from '../persistence/mysql-helpers.js';
import { requireRedis } from '../persistence/store-helpers.js';
import type { SuiteReport } from '../../bench/suite-report.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const NAMES = [
  'bare_uws_ceiling',
  'redis_lua',
  'mysql_conditional_update',
  'stockade_file',
  'stockade_kafka',
];

t.setTimeout(360_000);

t.test('the whole suite, quick', async (t) => {
  if (!(await requireRedis(t)) || !(await requireMysql(t))) return;
  const dir = mkdtempSync(join(tmpdir(), 'stockade-suite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'out.json');
  const child = spawn(
    process.execPath,
    ['--import=tsx', 'bench/index.ts', 'all', '--quick', '--out', dir, '--json', json],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0, `exits 0:\n${out.slice(-3000)}`);
  t.match(out, /\[\d\d:\d\d\] steady · stockade_file · 20 connections/, 'progress as it goes');

  const report = JSON.parse(readFileSync(json, 'utf8')) as SuiteReport;
  const scenario = (key: string) => report.scenarios.find((s) => s.key === key)!;
  for (const key of ['steady_c20', 'steady_c100', 'read', 'rate']) {
    const s = scenario(key);
    t.same(
      s.cases.map((c) => c.name).filter((n) => n !== 'generator_noop'),
      NAMES,
      `${key}: every system, by its fixed name`,
    );
    for (const c of s.cases) {
      t.type(c.throughput_per_s, 'number');
      t.type(c.latency_ms.p50, 'number');
      t.type(c.latency_ms.p99, 'number');
      t.ok(
        'oversold' in c && 'sold' in c && typeof c.tool === 'string',
        `${key}/${c.name}: fields`,
      );
      t.ok(
        key === 'rate' ? typeof c.rate === 'number' : typeof c.connections === 'number',
        `${key}/${c.name}: its load named`,
      );
      // What sells was read back (the run fails on a lost, invented or oversold unit).
      if (c.name !== 'bare_uws_ceiling' && c.name !== 'generator_noop')
        t.ok((c.sold ?? 0) > 0, `${key}/${c.name}: sold ${c.sold}, read back`);
    }
  }
  for (const key of ['steady_c20', 'steady_c100'])
    for (const c of scenario(key).cases.filter((c) => c.name !== 'bare_uws_ceiling'))
      t.ok((c.sold ?? 0) >= (c.acknowledged as number), `${key}/${c.name}: every 2xx sold`);
  const steady = scenario('steady_c100');
  for (const c of steady.cases.filter((c) => c.name !== 'bare_uws_ceiling')) {
    t.ok((c.sold ?? 0) > 0, `${c.name} sold, read back`);
    t.type(c.ratio_to_ceiling, 'number', `${c.name}: ratio to the ceiling`);
  }
  const flash = scenario('flash');
  t.same(
    flash.cases.map((c) => c.name),
    NAMES.slice(1),
    'flash on every system that keeps stock',
  );
  for (const c of flash.cases) {
    t.equal(c.sold, c.stock, `${c.name}: sold exactly its stock`);
    t.equal(c.created_201, c.stock, `${c.name}: and answered 201 exactly that often`);
    t.equal(c.oversold, 0);
    const rejections = c.rejections as Record<string, number>;
    t.ok((rejections.sold_out ?? 0) > 0, `${c.name}: sold_out once sold out`);
    t.type(c.time_to_sell_out_ms, 'number');
  }
  for (const key of ['ws', 'lifecycle'])
    t.same(
      scenario(key).cases.map((c) => c.name),
      ['stockade_file', 'stockade_kafka'],
      `${key}: Stockade's journals`,
    );
  for (const c of scenario('lifecycle').cases) {
    t.ok(
      (c.confirmed as number) > 0 && (c.cancelled as number) > 0,
      `${c.name}: confirms, cancels`,
    );
    t.equal(c.reserved_after, 0, `${c.name}: no hold left once they expired`);
  }
  for (const c of scenario('ws').cases) t.ok((c.sold ?? 0) > 0, `${c.name}: sold over WebSockets`);
  t.type(report.generators.autocannon_per_s, 'number');
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  t.match(md, /× Redis\+Lua/, 'the markdown has the ratios');
  t.match(md, /Machine: \d+ CPUs/, 'and the machine');
  for (const f of ['steady-throughput.svg', 'steady-latency.svg', 'rate-latency.svg', 'flash.svg'])
    t.ok(existsSync(join(dir, f)), `${f} written`);
});
