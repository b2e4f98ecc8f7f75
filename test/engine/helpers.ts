import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadConfig } from '../../engine/index.js';
import type { ConfigInput, EngineOptions, StockadeConfig } from '../../engine/index.js';

/**
 * The test preset: environment ignored, two shards, no journal unless the test asks for one.
 * Sections in `overrides` are merged over the preset.
 */
export function testConfig(overrides: ConfigInput = {}): StockadeConfig {
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      engine: { shards: 2, ...overrides.engine },
      journal: { kind: 'none', ...overrides.journal },
    },
  });
}

export function testEngine(overrides: ConfigInput = {}, options: Omit<EngineOptions, 'config' | 'overrides'> = {}) {
  return createEngine({ config: testConfig(overrides), ...options });
}

/** A fresh directory for a file journal. */
export function tempDir(prefix = 'stockade-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
