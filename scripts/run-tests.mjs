#!/usr/bin/env node
// Runs the whole test suite with tap (TAP output, one process per test file) and ends with the
// one-line summary that CI reads: "N passed, N failed, N skipped". Counts are tap's assertion
// counts. Arguments are passed to tap, so `npm test -- test/actors` runs a subset.
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const tapBin = fileURLToPath(new URL('../node_modules/tap/dist/esm/run.mjs', import.meta.url));
// tap does not look into a directory for .ts files on its own: expand directories to a glob.
const targets = process.argv.slice(2).map((a) =>
  !a.startsWith('-') && existsSync(a) && statSync(a).isDirectory() ? `${a.replace(/\/$/, '')}/**/*.test.ts` : a,
);
const args = [tapBin, '--reporter=tap', ...targets];
const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });

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
  process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exit(code ?? (signal ? 1 : 0));
});
