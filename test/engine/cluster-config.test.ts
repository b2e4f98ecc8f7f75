import t from 'tap';
import { ConfigError, createEngine, loadConfig } from '../../engine/index.js';
import type { ConfigInput } from '../../engine/index.js';
import { checkClusterConfig } from '../../engine/cluster.js';

// The settings a cluster member refuses before it joins anything (no broker needed: each is
// refused before the journal opens).

function config(overrides: ConfigInput) {
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      journal: { kind: 'kafka', ...overrides.journal },
      cluster: { enabled: true, ...overrides.cluster },
    },
  });
}

t.test('a cluster needs the Kafka journal', async (t) => {
  const c = config({ journal: { kind: 'file' } });
  t.throws(() => checkClusterConfig(c), { message: /needs journal.kind kafka, got file/ });
  await t.rejects(createEngine({ config: config({ journal: { kind: 'none' } }) }), ConfigError);
});

t.test('heartbeats at most a third of the session timeout', async (t) => {
  const c = config({ cluster: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 2001 } });
  t.throws(() => checkClusterConfig(c), { message: /at most a third/ });
  t.doesNotThrow(() =>
    checkClusterConfig(config({ cluster: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 2000 } })),
  );
});

t.test('beyond loopback, the members must share a secret', async (t) => {
  for (const cluster of [
    { listen: '0.0.0.0:7070' },
    { listen: '10.1.2.3:7070' },
    { listen: '[::]:7070' },
    { advertise: 'http://10.0.0.11:7070' }, // listens on the advertised port, all interfaces
  ]) {
    t.throws(
      () => checkClusterConfig(config({ cluster })),
      { message: /set cluster.secret/ },
      JSON.stringify(cluster),
    );
    t.doesNotThrow(
      () => checkClusterConfig(config({ cluster: { ...cluster, secret: 'shared' } })),
      `${JSON.stringify(cluster)} with a secret`,
    );
  }
  for (const listen of ['127.0.0.1:0', '127.0.0.1:7070', '[::1]:7070', 'localhost:7070']) {
    t.doesNotThrow(
      () => checkClusterConfig(config({ cluster: { listen } })),
      `${listen}: no secret needed`,
    );
  }
});
