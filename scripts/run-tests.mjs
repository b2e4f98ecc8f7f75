#!/usr/bin/env node
// Runs the whole test suite with tap (TAP output, one process per test file) and ends with the
// one-line summary that CI reads: "N passed, N failed, N skipped". Counts are tap's assertion
// counts. Arguments are passed to tap, so `npm test -- test/actors` runs a subset.
//
// Coverage: every process of the run (tap's test processes and the servers they start) writes
// V8 coverage to a temporary directory; c8 then reports it against the source (.c8rc.json) and,
// for a whole run, holds it to the floor in .c8rc.json's `check` (today's figures rounded down,
// less a point for branches: which fault paths a run takes depends on timing, and branch
// coverage moves by ~0.8 points between runs): a run that falls below it counts one failure
// more. Files that hold only types are excluded: they compile to nothing that could run. `--no-coverage` skips it (a flag, not
// a STOCKADE_ variable: the engine refuses STOCKADE_ variables it does not know, and the tests'
// child processes inherit the environment).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tapBin = join(root, 'node_modules/tap/dist/esm/run.mjs');
const c8Bin = join(root, 'node_modules/c8/bin/c8.js');
// tap does not look into a directory for .ts files on its own: expand directories to a glob.
const argv = process.argv.slice(2);
const coverage = !argv.includes('--no-coverage');
const targets = argv.filter((a) => a !== '--no-coverage').map((a) =>
  !a.startsWith('-') && existsSync(a) && statSync(a).isDirectory()
    ? `${a.replace(/\/$/, '')}/**/*.test.ts`
    : a,
);
const wholeRun = targets.length === 0;
const coverageDir = coverage ? mkdtempSync(join(tmpdir(), 'stockade-coverage-')) : null;
const env = coverageDir ? { ...process.env, NODE_V8_COVERAGE: coverageDir } : process.env;
const args = [tapBin, '--reporter=tap', ...targets];
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });

let summary = null;
let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-4096);
  const m = /^# (\{[^\n]*total[^\n]*\})\s*$/m.exec(tail);
  if (m) summary = m[1];
});
child.on('close', (exitCode, signal) => {
  let code = exitCode;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (summary) {
    const field = (name) => Number((new RegExp(`${name}: (\\d+)`).exec(summary) ?? [])[1] ?? 0);
    passed = field('pass');
    failed = field('fail');
    skipped = field('skip') + field('todo');
  }
  // A run that crashed before tap could summarize, or that ran nothing, must not look green.
  if (code !== 0 && failed === 0) failed = 1;
  if (summary === null || passed + failed + skipped === 0) {
    process.stderr.write('run-tests: tap reported no tests\n');
    if (failed === 0) failed = 1;
    code = code || 1;
  }
  if (coverageDir && !reportCoverage(coverageDir)) {
    failed += 1;
    code = code || 1;
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exit(code ?? (signal ? 1 : 0));
});

/** Prints the coverage summary; for a whole run, false when it is below the floor. */
function reportCoverage(dir) {
  const floor = JSON.parse(readFileSync(join(root, '.c8rc.json'), 'utf8')).check;
  const checks = wholeRun
    ? ['--check-coverage', ...Object.entries(floor).flatMap(([k, v]) => [`--${k}`, String(v)])]
    : [];
  const r = spawnSync(process.execPath, [c8Bin, 'report', '--temp-directory', dir, ...checks], {
    cwd: root,
    encoding: 'utf8',
  });
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(r.stdout);
  if (r.status === 0) return true;
  process.stderr.write(
    `run-tests: coverage is below the floor in .c8rc.json (${JSON.stringify(floor)}):\n` +
      r.stderr,
  );
  return false;
}
