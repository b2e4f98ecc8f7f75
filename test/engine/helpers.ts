import { createEngine, loadConfig } from '../../engine/index.js';
import type { ConfigInput, EngineOptions } from '../../engine/index.js';

/** A test engine: environment ignored, two shards unless told otherwise. */
export function testEngine(overrides: ConfigInput = {}, options: Omit<EngineOptions, 'config' | 'overrides'> = {}) {
  const config = loadConfig({ env: {}, overrides: { engine: { shards: 2, ...overrides.engine }, ...rest(overrides) } });
  return createEngine({ config, ...options });
}

function rest(o: ConfigInput): ConfigInput {
  const { engine: _engine, ...others } = o;
  return others;
}
