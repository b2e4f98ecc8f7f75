// The package as another project gets it: `npm pack` (which builds dist/ through prepack), the
// tarball unpacked into a fresh project's node_modules, and `import { createEngine } from
// 'stockade'` run there, in JavaScript and type-checked from TypeScript. The unpacked package
// reaches its dependencies through a link to this checkout's node_modules, so nothing is
// downloaded.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eventually, tempDir } from './helpers.js';
import { envWithoutStockade, tcpReachable } from '../persistence/service-helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The packed tarball (the first test makes it; the others install it). */
let tarball = '';

t.test('npm pack gives a package that another project imports as `stockade`', async (t) => {
  const dir = tempDir('stockade-pack-');

  const packed = await run(npm, ['pack', '--json', '--pack-destination', dir], {
    cwd: root,
    timeout: 240_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  // prepack's build output comes first on stdout; the JSON report is the last thing printed.
  const json = packed.stdout.slice(packed.stdout.indexOf('[\n'));
  const [info] = JSON.parse(json) as { filename: string; files: { path: string }[] }[];
  const files = info.files.map((f) => f.path);
  for (const want of ['dist/engine/index.js', 'dist/engine/index.d.ts', 'dist/config/index.js']) {
    t.ok(files.includes(want), `the tarball holds ${want}`);
  }
  const stray = files.filter((f) => f.startsWith('test/') || f.startsWith('.services'));
  t.same(stray, [], 'no tests, no service data');
  t.notOk(
    files.some((f) => f.startsWith('dist/bench/')),
    'the benchmarks stay out of the package',
  );

  tarball = join(dir, info.filename);
  const app = join(dir, 'app');
  const pkg = join(app, 'node_modules', 'stockade');
  mkdirSync(pkg, { recursive: true });
  await run('tar', ['-xzf', join(dir, info.filename), '-C', pkg, '--strip-components=1']);
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');
  const manifest = { name: 'app', type: 'module', private: true };
  writeFileSync(join(app, 'package.json'), JSON.stringify(manifest));

  writeFileSync(
    join(app, 'main.js'),
    `import { createEngine } from 'stockade';
const engine = await createEngine({ overrides: { engine: { shards: 1 }, journal: { kind: 'none' } } });
const defined = await engine.defineSku({ sku: 'tee', stock: 1, perUserLimit: 1 });
const first = await engine.reserve({ sku: 'tee', userId: 'u1', qty: 1, idempotencyKey: 'k1' });
const second = await engine.reserve({ sku: 'tee', userId: 'u2', qty: 1, idempotencyKey: 'k2' });
await engine.close();
console.log(JSON.stringify([defined.status, first.status, second.status]));
`,
  );
  const out = await run(process.execPath, ['main.js'], { cwd: app, timeout: 60_000 });
  const statuses: unknown = JSON.parse(out.stdout);
  t.same(statuses, ['defined', 'reserved', 'sold_out'], 'the packed engine sells one unit once');

  // The published types: a consumer's TypeScript sees the result union and the error codes.
  writeFileSync(
    join(app, 'check.ts'),
    `import { createEngine } from 'stockade';
import type { ReserveResult } from 'stockade';
export async function buy(): Promise<string> {
  const engine = await createEngine();
  const r: ReserveResult = await engine.reserve({ sku: 's', userId: 'u', qty: 1, idempotencyKey: 'k' });
  await engine.close();
  return r.status === 'reserved' ? r.reservationId : r.status;
}
`,
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext'];
  const checked = await run(process.execPath, [tsc, ...args, '--skipLibCheck', 'check.ts'], {
    cwd: app,
    timeout: 120_000,
  }).then(
    () => '',
    (err: Error & { stdout?: string }) => err.stdout || err.message,
  );
  t.equal(checked, '', 'a TypeScript consumer type-checks against the published declarations');
});

// An embedder's first minutes: a plain `npm install` of the package (no environment variables,
// no flags, the npm registry for its few dependencies) installs the engine and the file journal
// and nothing native; the README's library example runs there, twice; a feature whose optional
// package is not installed fails at once, naming it.
t.test('a plain npm install is light, native-free, and runs the README example', async (t) => {
  if (!tarball) throw new Error('the pack test did not run');
  const app = tempDir('stockade-install-');
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'shop', type: 'module', private: true }),
  );
  // Plain: none of this run's npm settings (npm test sets npm_config_*), no ONNXRUNTIME_*.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(npm_|ONNXRUNTIME|STOCKADE_)/i.test(k)) env[k] = v;
  }
  await run(npm, ['install', '--no-audit', '--no-fund', tarball], {
    cwd: app,
    env,
    timeout: 300_000,
  });
  const installed = join(app, 'node_modules');
  const bytes = Number((await run('du', ['-sb', installed])).stdout.split('\t')[0]);
  t.ok(bytes <= 30 * 2 ** 20, `installed ${(bytes / 2 ** 20).toFixed(1)} MB (at most 30)`);
  const native = (await run('find', [installed, '-name', '*.node'])).stdout.trim();
  t.equal(native, '', 'no native addon');

  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const example = /```js\n(\/\/ main\.mjs[\s\S]*?)```/.exec(readme)?.[1];
  if (!example) throw new Error("README: no 'main.mjs' example");
  writeFileSync(join(app, 'main.mjs'), example);
  const first = (await run(process.execPath, ['main.mjs'], { cwd: app, env, timeout: 60_000 }))
    .stdout;
  t.match(first, /define: defined\n/, 'the first run defines the sale');
  t.match(first, /reserve: \{[^}]*status: 'reserved'[^}]*duplicate: false/s, 'and reserves');
  t.match(first, /confirm: confirmed\navailable 999, sold 1\n/, 'and sells one unit');
  const second = (await run(process.execPath, ['main.mjs'], { cwd: app, env, timeout: 60_000 }))
    .stdout;
  t.match(second, /define: sku_exists\n/, 'the second run finds its sale');
  t.match(second, /reserve: \{[^}]*reservationId: 'tee-black-m:1'[^}]*duplicate: true/s);
  t.match(second, /available 999, sold 1\n/, 'the retry bought nothing twice');

  // The Kafka journal without kafkajs: a clear error, at once.
  writeFileSync(
    join(app, 'kafka.mjs'),
    `import { createEngine } from 'stockade';
try {
  await createEngine({ overrides: { journal: { kind: 'kafka' } } });
  console.log('started');
} catch (e) {
  console.log(e.code, e.message);
}
`,
  );
  const kafka = await run(process.execPath, ['kafka.mjs'], { cwd: app, env, timeout: 60_000 });
  t.match(
    kafka.stdout,
    /^package_missing The Kafka journal needs the package kafkajs, not installed: npm install kafkajs@2\.2\.4/,
    'the Kafka journal names the package it needs',
  );
  const serve = await run(
    process.execPath,
    [join(installed, 'stockade', 'dist', 'cli', 'stockade.js'), 'serve', '--port', '0'],
    { cwd: app, env, timeout: 60_000 },
  ).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  t.equal(serve.code, 2, 'stockade serve without uWebSockets.js exits 2');
  t.match(serve.stderr, /npm install @trufflesuite\/uws-js-unofficial@/, 'naming the package');
});

// `npm start` as a container platform or a process manager stops it: SIGTERM (or SIGINT) to the
// PID of npm itself. The script must hand the signal to the server (`exec`, no shell in
// between), and the server must drain and exit 0, releasing its port.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} to the PID of \`npm start\` stops the server, exit 0`, async (t) => {
    // dist/ is current: the test above packed (and so built) it; --ignore-scripts skips the
    // prestart build that would do it again.
    const data = tempDir('stockade-start-');
    const child = spawn(npm, ['start', '--ignore-scripts'], {
      cwd: root,
      env: { ...envWithoutStockade(), STOCKADE_PORT: '0', STOCKADE_DATA_DIR: data },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    await eventually(() => /serving on http:\/\/[\d.]+:\d+/.test(out), 60_000, 'serving');
    const port = Number(/serving on http:\/\/[\d.]+:(\d+)/.exec(out)![1]);
    t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200, 'it serves');
    process.kill(child.pid!, signal);
    const code = await exited;
    t.equal(code, 0, `npm start exits 0 on ${signal}`);
    t.notOk(await tcpReachable('127.0.0.1', port, 1_000), 'the port is released: no orphan');
  });
}
