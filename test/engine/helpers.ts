import { mkdtempSync, rmSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadConfig } from '../../engine/index.js';
import type { ConfigInput, EngineOptions, StockadeConfig } from '../../engine/index.js';

/**
 * Where the preset runs shards: inline.test.ts sets 'inline' and then runs the engine and
 * recovery suites again, so both ways of running shards pass the same tests.
 */
export const testPreset: { shardThreads: 'workers' | 'inline' } = { shardThreads: 'workers' };

/**
 * The test preset: environment ignored, two shards, no journal unless the test asks for one.
 * Sections in `overrides` are merged over the preset.
 */
export function testConfig(overrides: ConfigInput = {}): StockadeConfig {
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      engine: { shards: 2, shardThreads: testPreset.shardThreads, ...overrides.engine },
      journal: { kind: 'none', ...overrides.journal },
    },
  });
}

export function testEngine(
  overrides: ConfigInput = {},
  options: Omit<EngineOptions, 'config' | 'overrides'> = {},
) {
  return createEngine({ config: testConfig(overrides), ...options });
}

const made: string[] = [];
// Each test file is its own process: its temp directories go when it exits (a child process
// handed one of them by path does not remove it).
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory for a file journal, removed when this test process exits. */
export function tempDir(prefix = 'stockade-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/**
 * Polls `check` every 20 ms until it holds; past `ms`, fails saying `what` it waited for (a
 * function is asked at that moment, so it can say what is still missing).
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string | (() => string),
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(
        `after ${ms} ms, still waiting for ${typeof what === 'string' ? what : what()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

let gc: (() => void) | null = null;
/** The heap in use after full collections, in MB (for tests that a long run leaks nothing). */
export function heapAfterGcMb(): number {
  if (gc === null) {
    v8.setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1e6;
}
