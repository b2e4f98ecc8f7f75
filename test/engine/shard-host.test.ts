// The shard host on a simulated journal whose writes the test completes or fails by hand.
import t from 'tap';
import { BatchWriter, ManualClock, RESULT_STRIDE, Status } from '../../actors/index.js';
import { JournalError } from '../../persistence/journal/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { ShardHost } from '../../engine/shard-host.js';
import { SimJournal } from '../simulation/sim-journal.js';

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Lets the host start its append, then settles it as `how` says. */
async function append(journal: SimJournal, how: () => void): Promise<void> {
  await settle();
  if (!journal.pending) throw new Error('no append in flight');
  how();
  await settle();
}

function reserve(host: ShardHost, key: string): Float64Array {
  const writer = new BatchWriter();
  writer.reserve('tee', 1, `user-${key}`, key);
  const { buffer, bytes, count } = writer.take(new ArrayBuffer(256));
  const out = new Float64Array(count * RESULT_STRIDE);
  host.applyBatch(new Uint8Array(buffer, 0, bytes), count, out, () => {});
  return out;
}

/** A host with a subscriber, SKU 'tee' (stock 10) defined and durable (seq 1). */
async function forwardingHost() {
  const journal = new SimJournal();
  const forwarded: SkuEvent[] = [];
  const host = new ShardHost(
    0,
    { qtyMax: 5, holdTtlMsDefault: 60_000, timerTickMs: 50 },
    journal,
    new ManualClock(1_000),
    {
      onEvents: (events) => forwarded.push(...events),
    },
  );
  await host.recover();
  host.setForwarding(true);
  const defined = host.define({ sku: 'tee', stock: 10 });
  await append(journal, () => journal.complete());
  await defined;
  return { journal, host, forwarded };
}

t.test(
  'an append that fails yet lands: its events still reach subscribers, once, in seq order',
  async (t) => {
    const { journal, host, forwarded } = await forwardingHost();

    reserve(host, 'a');
    await append(journal, () => journal.complete()); // seq 2, acknowledged
    reserve(host, 'b');
    // The write reaches the journal, but the shard is told it failed (a Kafka send that timed out
    // after the broker took it). The shard rebuilds from the journal, which holds seq 3.
    await append(journal, () => journal.fail('written', 0));
    await host.flush();
    reserve(host, 'c');
    await append(journal, () => journal.complete()); // seq 4

    const seqs = forwarded.filter((e) => e.sku === 'tee').map((e) => e.seq);
    t.same(seqs, [1, 2, 3, 4], 'every durable event, none twice, none missing');
    t.match(host.shard.get('tee'), { available: 7, reserved: 3 }, 'the landed reservation is held');
  },
);

t.test('an append that fails and did not land: nothing of it reaches subscribers', async (t) => {
  const { journal, host, forwarded } = await forwardingHost();
  reserve(host, 'a');
  await append(journal, () => journal.fail('lost', 0));
  await host.flush();
  reserve(host, 'b');
  await append(journal, () => journal.complete());
  t.same(
    forwarded.map((e) => [e.type, e.seq]),
    [
      ['sku_defined', 1],
      ['reserved', 2],
    ],
    'the lost decision is never shown; the next one takes its seq',
  );
  t.match(host.shard.get('tee'), { available: 9, reserved: 1 });
});

t.test('a rebuild that fails for good faults the shard, which then decides nothing', async (t) => {
  const journal = new SimJournal();
  const faults: unknown[] = [];
  const host = new ShardHost(
    0,
    { qtyMax: 5, holdTtlMsDefault: 60_000, timerTickMs: 50 },
    journal,
    new ManualClock(1_000),
    {
      onFault: (err) => faults.push(err),
    },
  );
  await host.recover();
  const defined = host.define({ sku: 'tee', stock: 10 });
  await append(journal, () => journal.complete());
  await defined;
  reserve(host, 'a');
  // The append fails and the journal then reads back as corrupt: waiting will not cure that.
  journal.read = () =>
    Promise.reject(new JournalError('journal_corrupt', 'a frame does not decode'));
  await append(journal, () => journal.fail('lost', 0));
  await host.flush();
  t.match(faults, [{ code: 'journal_corrupt' }], 'the fault is reported');
  const out = reserve(host, 'b');
  await settle();
  t.equal(out[0], Status.journal_unavailable, 'a later request is refused, not confirmed');
  t.notOk(journal.pending, 'and nothing is appended');
  t.equal(host.tick(), 0);
});
