import t from 'tap';
import { KafkaJournal } from '../../persistence/journal/index.js';
import { tail } from '../../cli/index.js';
import { kafkaTestSettings } from './kafka-helpers.js';
import { perSku, saleCommits } from './journal-helpers.js';
import { Collect, parseJsonLines } from './tail-helpers.js';

/** `stockade tail` on the Kafka journal (registered by kafka-journal.test.ts, see there). */
export function kafkaTailTests(): void {
  t.test('stockade tail reads the Kafka journal: JSON lines, text, --from, --follow', async (t) => {
    const s = kafkaTestSettings('tail');
    const j = new KafkaJournal(s, 2);
    t.teardown(() => j.close());
    const sale = saleCommits(['mug', 'cap', 'tee'], 17);
    const c1 = sale.commit(25);
    const p1 = await j.append(1, c1.payload);
    const c2 = sale.commit(25);
    await j.append(1, c2.payload);
    const flags = ['--journal', 'kafka', '--kafka-brokers', s.brokers.join(',')];
    flags.push('--kafka-topic', s.topic);
    const run = async (args: string[], out = new Collect()) => {
      const err = new Collect();
      const code = await tail([...flags, ...args], out, { env: {}, err });
      return { code, out, err: err.text };
    };

    const all = await run([]);
    t.equal(all.code, 0, all.err);
    const lines = parseJsonLines(all.out);
    t.ok(
      lines.every((l) => l.shard === 1),
      'shard 0 is empty, everything is on shard 1',
    );
    const both = perSku([...c1.events, ...c2.events]);
    t.same(perSku(lines.map((l) => l.event)), both, 'every event, per SKU in order');

    const rest = await run(['--shard', '1', '--from', String(p1)]);
    const after = parseJsonLines(rest.out).map((l) => l.event);
    t.same(perSku(after), perSku(c2.events), '--from: only what follows');

    const text = await run(['--shard', '1', '--format', 'text', '--limit', '3']);
    t.equal(text.out.lines().length, 3, '--limit');
    const first = /^1:\d+ \d{4}-\d\d-\d\dT\S+Z \w+ #1 sku_defined stock=1000000 limit=50 /;
    t.match(text.out.lines()[0], first);

    // --follow: prints what is there, then what is appended while it polls.
    const c3 = sale.commit(10);
    const have = c1.events.length + c2.events.length;
    const out = new Collect();
    const limit = String(have + c3.events.length);
    const following = run(['--shard', '1', '--follow', '--poll-ms', '20', '--limit', limit], out);
    await out.untilLines(have);
    await j.append(1, c3.payload);
    const followed = await following;
    t.equal(followed.code, 0, followed.err);
    const everything = perSku([...c1.events, ...c2.events, ...c3.events]);
    t.same(perSku(parseJsonLines(out).map((l) => l.event)), everything);

    const missing = await run(['--kafka-topic', `${s.topic}-missing`]);
    t.equal(missing.code, 1);
    t.match(missing.err, /journal_mismatch: kafka topic \S+ does not exist/);
  });
}
