import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, configFields, ConfigError } from '../../config/index.js';
import { tempDir } from '../engine/helpers.js';

t.test('defaults are valid and frozen', async (t) => {
  const c = loadConfig({ env: {} });
  t.ok(c.engine.shards >= 1);
  t.equal(c.journal.kind, 'file', 'durable by default');
  t.equal(c.journal.durability, 'fsync');
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.engine));
  t.throws(() => {
    (c.engine as { shards: number }).shards = 9;
  });
});

t.test('env vars, a JSON file and overrides apply in that precedence', async (t) => {
  const dir = tempDir('stockade-config-');
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ engine: { shards: 3, qtyMax: 7 } }));
  const c = loadConfig({
    env: { STOCKADE_CONFIG: file, STOCKADE_SHARDS: '4' },
    overrides: { engine: { qtyMax: 9 } },
  });
  t.equal(c.engine.shards, 4, 'env beats file');
  t.equal(c.engine.qtyMax, 9, 'overrides beat file');
});

t.test('bad values are rejected naming the key and the accepted range', async (t) => {
  t.throws(() => loadConfig({ env: {}, overrides: { engine: { shards: 0 } } }), {
    code: 'config_invalid',
    message: 'config.engine.shards must be an integer from 1 to 64, got 0',
  });
  t.throws(() => loadConfig({ env: { STOCKADE_SHARDS: 'two' } }), {
    message:
      "config.engine.shards must be an integer from 1 to 64, got 'two' (from STOCKADE_SHARDS)",
  });
  t.throws(
    () => loadConfig({ env: { STOCKADE_LOG_LEVEL: 'loud' } }),
    /config.log.level must be one of 'fatal'/,
  );
  t.throws(() => loadConfig({ env: {}, overrides: { engine: { shards: 2.5 } } }), ConfigError);
});

t.test('unknown keys and unknown STOCKADE_ variables are rejected', async (t) => {
  t.throws(
    () => loadConfig({ env: { STOCKADE_SHARD: '2' } }),
    /unknown environment variable STOCKADE_SHARD;/,
  );
  t.throws(
    () => loadConfig({ env: {}, overrides: { engine: { shard: 2 } } as never }),
    /unknown configuration key 'engine.shard'/,
  );
  const dir = tempDir('stockade-config-');
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ nope: { x: 1 } }));
  t.throws(() => loadConfig({ env: {}, file }), /unknown configuration key 'nope.x' in/);
  writeFileSync(file, '{not json');
  t.throws(() => loadConfig({ env: {}, file }), /cannot read configuration file/);
});

t.test(
  'every field has a default that passes its own validation and a unique env var',
  async (t) => {
    const envs = new Set<string>();
    for (const f of configFields) {
      t.ok(f.env.startsWith('STOCKADE_'), f.key);
      t.notOk(envs.has(f.env), `${f.env} is unique`);
      envs.add(f.env);
      t.ok(f.doc.length > 10, `${f.key} is documented`);
    }
    t.doesNotThrow(() => loadConfig({ env: {} }));
  },
);
