// The package as another project gets it: `npm pack` (which builds dist/ through prepack), the
// tarball unpacked into a fresh project's node_modules, and `import { createEngine } from
// 'stockade'` run there, in JavaScript and type-checked from TypeScript. The unpacked package
// reaches its dependencies through a link to this checkout's node_modules, so nothing is
// downloaded.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

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
