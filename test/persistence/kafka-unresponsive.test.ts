// A broker that accepts connections and never answers (hung, partitioned, paused): the Kafka
// journal must still answer within `kafka.appendTimeoutMs` (see silentBroker).
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { KafkaJournal } from '../../persistence/journal/index.js';
import { loadConfig } from '../../config/index.js';
import { saleCommits } from './journal-helpers.js';
import { silentBroker } from './kafka-helpers.js';
import { ShardHost } from '../../engine/shard-host.js';
import { ManualClock } from '../../actors/index.js';

t.test('an unresponsive broker: appends and reads fail within the timeout', async (t) => {
  const broker = await silentBroker();
  const appendTimeoutMs = 300;
  const base = loadConfig({ env: {} }).kafka;
  const brokers = [broker.address];
  const j = new KafkaJournal({ ...base, brokers, appendTimeoutMs, topic: 'never-there' }, 2);
  const payload = saleCommits(['a', 'b'], 3).commit(10).payload;
  const bound = appendTimeoutMs + 250;

  for (let i = 0; i < 3; i++) {
    // The first send is still retrying inside kafkajs after its append gave up: the later
    // appends wait for it (never two sends on one producer) and give up on time as well.
    const started = performance.now();
    await t.rejects(j.append(0, payload), { code: 'journal_unavailable' }, `append ${i}`);
    t.ok(performance.now() - started < bound, `append ${i} answered within ${bound} ms`);
  }
  let started = performance.now();
  await t.rejects(
    j.read(0, 0, () => {}),
    { code: 'journal_unavailable' },
    'a read',
  );
  t.ok(performance.now() - started < bound, 'the read too');
  await t.rejects(j.append(1, payload), { code: 'journal_unavailable' }, 'another shard');

  await broker.close();
  started = performance.now();
  await j.close();
  t.ok(performance.now() - started < bound + 500, 'close does not hang either');
});

t.test(
  'an abandoned shard host resolves only once the send under its timed-out append has settled',
  async (t) => {
    const broker = await silentBroker();
    t.teardown(() => broker.close());
    const base = loadConfig({ env: {} }).kafka;
    const appendTimeoutMs = 300;
    const j = new KafkaJournal(
      { ...base, brokers: [broker.address], appendTimeoutMs, topic: 'never-there' },
      1,
    );
    t.teardown(() => j.close());
    const host = new ShardHost(
      0,
      { qtyMax: 5, holdTtlMsDefault: 60_000, timerTickMs: 50 },
      j,
      new ManualClock(1_000),
    );
    // define() appends; the append gives up after appendTimeoutMs, the send under it goes on
    // retrying (bounded) against a broker that never answers.
    const defined = host.define({ sku: 'tee', stock: 1 });
    await new Promise((resolve) => setTimeout(resolve, appendTimeoutMs + 100));
    let sendSettled = false;
    void j.settled(0).then(() => (sendSettled = true));
    await new Promise((resolve) => setImmediate(resolve));
    t.notOk(sendSettled, 'the append has timed out, but its send is still running');
    const started = performance.now();
    await host.abandon();
    t.ok(
      sendSettled,
      `abandon resolved after the send settled (${Math.round(performance.now() - started)} ms later)`,
    );
    void defined.catch(() => {});
  },
);
