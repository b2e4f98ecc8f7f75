// `stockade tail` on the file journal. (On Kafka: kafka-tail.ts, run by kafka-journal.test.ts.)
import t from 'tap';
import { appendFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FileJournal, fileJournalSource } from '../../persistence/journal/index.js';
import { tail } from '../../cli/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { tempDir } from '../engine/helpers.js';
import { perSku, saleCommits } from './journal-helpers.js';
import type { Commit } from './journal-helpers.js';
import { Collect, parseJsonLines } from './tail-helpers.js';

interface Written {
  dir: string;
  journal: FileJournal;
  commits: Commit[][];
  positions: number[][];
}

/** A file journal with two shards, three group commits each, from real actors. */
async function written(preallocBytes = 0): Promise<Written> {
  const dir = tempDir('stockade-tail-');
  const journal = preallocBytes
    ? new FileJournal({ dir, durability: 'fsync', preallocBytes })
    : new FileJournal({ dir, durability: 'os' });
  if (preallocBytes) for (const shard of [0, 1]) await journal.read(shard, 0, () => {});
  const commits: Commit[][] = [[], []];
  const positions: number[][] = [[], []];
  for (let shard = 0; shard < 2; shard++) {
    const sale = saleCommits([`mug-${shard}`, 'tee'], 50 + shard);
    for (let k = 0; k < 3; k++) {
      const c = sale.commit(20);
      commits[shard].push(c);
      positions[shard].push(await journal.append(shard, c.payload));
    }
  }
  return { dir, journal, commits, positions };
}

async function run(args: string[], out = new Collect(), signal?: AbortSignal) {
  const err = new Collect();
  const code = await tail(['--journal', 'file', ...args], out, { env: {}, err, signal });
  return { code, out, err: err.text };
}

const eventsOf = (commits: Commit[]): SkuEvent[] => commits.flatMap((c) => c.events);

t.test('prints every event of every shard as JSON lines with shard and position', async (t) => {
  const w = await written();
  const r = await run(['--data-dir', w.dir]);
  t.equal(r.code, 0, r.err);
  const lines = parseJsonLines(r.out);
  for (let shard = 0; shard < 2; shard++) {
    const mine = lines.filter((l) => l.shard === shard);
    t.same(
      mine.map((l) => l.event),
      eventsOf(w.commits[shard]),
      `shard ${shard}: the events, in journal order`,
    );
    const positions = [...new Set(mine.map((l) => l.position))];
    t.same(positions, w.positions[shard], 'each line carries the position after its payload');
  }
  t.equal(r.err, '');
});

t.test('--shard, --from, --limit and --format text', async (t) => {
  const w = await written();
  const pos = String(w.positions[1][0]);
  const from = await run(['--data-dir', w.dir, '--shard', '1', '--from', pos]);
  t.same(
    parseJsonLines(from.out).map((l) => l.event),
    eventsOf(w.commits[1].slice(1)),
    '--from the position after the first commit: the other two',
  );
  const text = await run(['--data-dir', w.dir, '--shard', '0', '--format', 'text', '--limit', '2']);
  t.equal(text.out.lines().length, 2);
  const first = /^0:\d+ \d{4}-\d\d-\d\dT\S+Z \S+ #1 sku_defined stock=1000000 limit=50 hold=/;
  t.match(text.out.lines()[0], first);
  const none = await run(['--data-dir', w.dir, '--shard', '7']);
  t.equal(none.code, 0, 'a shard with no file prints nothing');
  t.equal(none.out.text, '');
});

t.test('a torn tail is reported, not printed, and the file is left as it is', async (t) => {
  const w = await written();
  const file = join(w.dir, 'shard-0.journal');
  appendFileSync(file, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5, 6])); // a header and a few bytes
  const size = statSync(file).size;
  const r = await run(['--data-dir', w.dir, '--shard', '0']);
  t.equal(r.code, 0);
  t.same(
    parseJsonLines(r.out).map((l) => l.event),
    eventsOf(w.commits[0]),
  );
  t.match(r.err, /the 10 bytes from position \d+ are not a complete frame/);
  t.equal(statSync(file).size, size, 'tail never truncates: the engine may be writing that frame');
  const mid = await run(['--data-dir', w.dir, '--shard', '1', '--from', '3']);
  t.equal(parseJsonLines(mid.out).length, 0, '--from inside a frame prints nothing');
  t.match(mid.err, /not a complete frame/);
});

t.test('--follow prints what is appended while it runs; a signal stops it', async (t) => {
  const w = await written();
  const have = eventsOf(w.commits[1]).length;
  const more = saleCommits(['late'], 77).commit(15);
  const out = new Collect();
  const limit = String(have + more.events.length);
  const args = ['--data-dir', w.dir, '--shard', '1', '--follow', '--poll-ms', '10'];
  args.push('--limit', limit);
  const following = run(args, out);
  await out.untilLines(have);
  await w.journal.append(1, more.payload);
  const r = await following;
  t.equal(r.code, 0, r.err);
  t.same(
    parseJsonLines(out).map((l) => l.event),
    [...eventsOf(w.commits[1]), ...more.events],
  );

  const stop = new AbortController();
  const out2 = new Collect();
  const endless = run(['--data-dir', w.dir, '--follow', '--poll-ms', '10'], out2, stop.signal);
  await out2.untilLines(eventsOf(w.commits[0]).length + have + more.events.length);
  stop.abort();
  t.equal((await endless).code, 0, 'Ctrl-C ends a --follow cleanly');
  t.same(perSku(parseJsonLines(out2).map((l) => l.event)).get('late'), more.events);
});

t.test('bad arguments exit 2 with the usage; a missing directory exits 1', async (t) => {
  for (const args of [['--format', 'xml'], ['--from', '5'], ['--shard', 'two'], ['--bogus']]) {
    const r = await run(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err, /usage: stockade tail/);
  }
  const missing = await run(['--data-dir', join(tempDir(), 'nope')]);
  t.equal(missing.code, 1);
  t.match(missing.err, /ENOENT/);
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out.text, /--follow/);
});

t.test('preallocated: every event, no torn-tail warning, the end where frames end', async (t) => {
  const w = await written(32 * 1024);
  const file = join(w.dir, 'shard-0.journal');
  const end = w.positions[0][2];
  t.ok(statSync(file).size > end, 'the engine keeps zeros ahead of the frames');
  const r = await run(['--data-dir', w.dir]);
  t.equal(r.code, 0, r.err);
  const lines = parseJsonLines(r.out).filter((l) => l.shard === 0);
  t.same(
    lines.map((l) => l.event),
    eventsOf(w.commits[0]),
    'every event of shard 0',
  );
  t.equal(r.err, '', 'zeros past the frames are not reported as a torn tail');
  const source = fileJournalSource(w.dir, null);
  t.equal(source.endPosition(0), end, 'a consumer sees the end of the frames, not of the file');
  t.equal(source.endPosition(1), w.positions[1][2]);
  await w.journal.close();
});
