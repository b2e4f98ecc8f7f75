import t from 'tap';
import {
  openSync,
  writeSync,
  closeSync,
  statSync,
  truncateSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { FileJournal, prepareJournalDir, JournalError } from '../../persistence/journal/index.js';
import { tempDir } from '../engine/helpers.js';

const payload = (n: number, size = 100) =>
  Uint8Array.from({ length: size }, (_, i) => (n * 31 + i) & 0xff);

async function readAll(j: FileJournal, shard = 0) {
  const got: Uint8Array[] = [];
  const positions: number[] = [];
  const end = await j.read(shard, 0, (p, pos) => {
    got.push(p);
    positions.push(pos);
  });
  return { got, positions, end };
}

t.test('appends are read back in order, per shard, with their positions', async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'fsync' });
  t.equal(await j.append(0, payload(1)), 108);
  t.equal(await j.append(0, payload(2, 50)), 108 + 58);
  t.equal(await j.append(1, payload(3)), 108);
  t.equal(j.durablePosition(0), 166);
  await j.close();
  const again = new FileJournal({ dir, durability: 'fsync' });
  const { got, positions, end } = await readAll(again);
  t.same(got, [payload(1), payload(2, 50)]);
  t.same(positions, [108, 166]);
  t.equal(end, 166);
  t.same((await readAll(again, 1)).got, [payload(3)]);
  t.same((await readAll(again, 7)).got, [], 'a shard with no file reads empty');
  await again.close();
});

t.test('a torn tail is detected, truncated on open, and never replayed', async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'os' });
  await j.append(0, payload(1));
  await j.append(0, payload(2));
  await j.close();
  const file = join(dir, 'shard-0.journal');
  // A crash in the middle of the third write: its header and half its payload reached the disk.
  const fd = openSync(file, 'a');
  const header = Buffer.alloc(8);
  header.writeUInt32LE(100, 0);
  header.writeUInt32LE(12345, 4);
  writeSync(fd, header);
  writeSync(fd, payload(3).subarray(0, 50));
  closeSync(fd);
  const reopened = new FileJournal({ dir, durability: 'os' });
  const { got, end } = await readAll(reopened);
  t.same(got, [payload(1), payload(2)]);
  t.equal(end, 216);
  t.equal(statSync(file).size, 216, 'the torn bytes are gone from the file');
  t.equal(reopened.truncatedBytes(0), 58);
  t.equal(await reopened.append(0, payload(4)), 324, 'appends continue after the good frames');
  t.same((await readAll(new FileJournal({ dir, durability: 'os' }))).got, [
    payload(1),
    payload(2),
    payload(4),
  ]);
});

t.test('a frame with a bad checksum ends the log there', async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'os' });
  await j.append(0, payload(1));
  await j.append(0, payload(2));
  await j.append(0, payload(3));
  await j.close();
  const file = join(dir, 'shard-0.journal');
  const bytes = readFileSync(file);
  bytes[108 + 8 + 10] ^= 0xff; // flip a byte inside the second payload
  writeFileSync(file, bytes);
  const { got } = await readAll(new FileJournal({ dir, durability: 'os' }));
  t.same(got, [payload(1)], 'nothing after a corrupt frame is believed');
});

t.test('a garbage length (e.g. a zeroed block) is treated as the end', async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'os' });
  await j.append(0, payload(1));
  await j.close();
  const file = join(dir, 'shard-0.journal');
  const fd = openSync(file, 'a');
  writeSync(fd, Buffer.alloc(4096)); // zeros: length 0
  closeSync(fd);
  const { got, end } = await readAll(new FileJournal({ dir, durability: 'os' }));
  t.same(got, [payload(1)]);
  t.equal(end, 108);
  truncateSync(file, 50); // and a file cut inside the first frame reads as empty
  t.same((await readAll(new FileJournal({ dir, durability: 'os' }))).got, []);
});

t.test('a second append in flight on the same shard is refused, not reordered', async (t) => {
  const j = new FileJournal({ dir: tempDir(), durability: 'fsync' });
  const first = j.append(0, payload(1));
  await t.rejects(j.append(0, payload(2)), /second append in flight/);
  await first;
  t.equal(await j.append(0, payload(2)), 216);
});

t.test('a journal directory remembers its shard count', async (t) => {
  const dir = tempDir();
  prepareJournalDir(dir, 2);
  prepareJournalDir(dir, 2);
  t.throws(() => prepareJournalDir(dir, 3), JournalError);
  t.throws(() => prepareJournalDir(dir, 3), {
    code: 'journal_mismatch',
    message: /written by 2 shards but engine.shards is 3/,
  });
});

t.test('preallocation: zeros past the frames, read back, reopened', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'shard-0.journal');
  const prealloc = 64 * 1024;
  const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: prealloc });
  t.equal(await j.read(0, 0, () => {}), 0, 'opening an empty shard');
  const first = await j.append(0, payload(0));
  const size = statSync(file).size;
  t.equal(size, first + prealloc, 'the first frame lays down preallocBytes of zeros');
  const want: Uint8Array[] = [payload(0)];
  let end = first;
  // Enough frames to cross several refills, each laid after the frames before it.
  for (let i = 1; i < 300; i++) {
    const p = payload(i, 700 + (i % 13));
    want.push(p);
    end = await j.append(0, p);
  }
  t.equal(j.durablePosition(0), end);
  const ahead = statSync(file).size;
  t.ok(ahead > end, `the file runs ahead of the frames (${ahead} > ${end})`);
  t.ok(ahead - end <= prealloc, 'by at most preallocBytes');
  const tail = readFileSync(file).subarray(end);
  t.ok(
    tail.every((b) => b === 0),
    'everything past the last frame is zeros',
  );
  await j.close();
  // Reopened: every frame comes back, the zeros are not a torn tail, appends go on after them.
  const again = new FileJournal({ dir, durability: 'fsync', preallocBytes: prealloc });
  const read = await readAll(again);
  t.same(read.got, want, 'every frame, in order');
  t.equal(read.end, end);
  t.equal(again.truncatedBytes(0), 0, 'zeros past the end are not reported as torn');
  const next = await again.append(0, payload(999));
  t.equal(next, end + 8 + 100);
  await again.close();
  t.same((await readAll(new FileJournal({ dir, durability: 'os' }))).got, [...want, payload(999)]);
});

t.test('preallocation: a frame torn over the zeros is cut off and reported', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'shard-0.journal');
  const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 16 * 1024 });
  await j.read(0, 0, () => {});
  const end = await j.append(0, payload(1));
  await j.close();
  // A crash mid-write: a header and part of the payload over the zero-filled space.
  const fd = openSync(file, 'r+');
  const header = Buffer.alloc(8);
  header.writeUInt32LE(100, 0);
  header.writeUInt32LE(777, 4);
  writeSync(fd, header, 0, 8, end);
  writeSync(fd, payload(2).subarray(0, 40), 0, 40, end + 8);
  closeSync(fd);
  const size = statSync(file).size;
  const again = new FileJournal({ dir, durability: 'fsync', preallocBytes: 16 * 1024 });
  const read = await readAll(again);
  t.same(read.got, [payload(1)], 'the torn frame is never replayed');
  t.equal(again.truncatedBytes(0), size - end, 'and reported as a torn tail');
  await again.close();
});

t.test(
  'with fsync durability, a damaged frame followed by a valid one is journal_corrupt, and nothing is cut',
  async (t) => {
    for (const damage of ['a flipped byte', 'a zeroed frame'] as const) {
      const dir = tempDir();
      const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4096 });
      for (let n = 1; n <= 4; n++) await j.append(0, payload(n));
      await j.close();
      const file = join(dir, 'shard-0.journal');
      const bytes = readFileSync(file);
      if (damage === 'a flipped byte')
        bytes[108 + 8 + 10] ^= 0xff; // inside the second payload
      else bytes.fill(0, 108, 216); // the second frame, header and all
      writeFileSync(file, bytes);
      const reopened = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4096 });
      const visited: Uint8Array[] = [];
      await t.rejects(
        reopened.read(0, 0, (p) => visited.push(p)),
        { code: 'journal_corrupt', message: /byte 108.*valid frame follows at byte 216/ },
        `${damage}: refused`,
      );
      t.equal(statSync(file).size, bytes.length, `${damage}: the file is left whole`);
      t.same(readFileSync(file), bytes, `${damage}: byte for byte`);
      await t.rejects(
        reopened.append(0, payload(9)),
        { code: 'journal_corrupt' },
        `${damage}: nothing is appended after it`,
      );
      t.same(readFileSync(file), bytes, `${damage}: still whole`);
    }
  },
);

t.test('a torn frame over the preallocated zeros is still cut with fsync durability', async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 1 << 20 });
  await j.append(0, payload(1));
  await j.append(0, payload(2, 3000));
  await j.close();
  const file = join(dir, 'shard-0.journal');
  // The second frame's last bytes never reached the disk: zeros where they should be.
  const bytes = readFileSync(file);
  bytes.fill(0, 108 + 8 + 2000, 108 + 8 + 3000);
  writeFileSync(file, bytes);
  const reopened = new FileJournal({ dir, durability: 'fsync', preallocBytes: 1 << 20 });
  t.same((await readAll(reopened)).got, [payload(1)]);
  t.equal(statSync(file).size, 108, 'cut after the last whole frame');
  t.equal(reopened.truncatedBytes(0), bytes.length - 108);
});

t.test("a visitor's own error is passed on, not taken for an unavailable journal", async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'fsync' });
  await j.append(0, payload(1));
  const own = Object.assign(new Error('unknown event payload version 9'), {
    code: 'journal_corrupt',
  });
  await t.rejects(
    j.read(0, 0, () => {
      throw own;
    }),
    own,
  );
  t.equal((await readAll(j)).got.length, 1, 'and the journal reads again');
});

t.test('a large torn frame over the preallocated zeros is cut in bounded time', async (t) => {
  // A torn frame whose bytes read as plausible lengths everywhere (little u32 counters): looking
  // for a valid frame after it must not checksum megabytes at every byte.
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4 << 20 });
  await j.append(0, payload(1));
  await j.close();
  const file = join(dir, 'shard-0.journal');
  const counters = Buffer.alloc(1 << 20);
  for (let i = 0; i < counters.length / 4; i++) counters.writeUInt32LE(i, i * 4);
  const header = Buffer.alloc(8);
  header.writeUInt32LE(2 << 20, 0); // declared 2 MiB, half of it written
  header.writeUInt32LE(12345, 4);
  const bytes = readFileSync(file);
  bytes.set(Buffer.concat([header, counters]), 108);
  writeFileSync(file, bytes);
  const started = Date.now();
  const reopened = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4 << 20 });
  t.same((await readAll(reopened)).got, [payload(1)]);
  t.equal(statSync(file).size, 108, 'the torn frame and the zeros are cut');
  t.comment(`opened in ${Date.now() - started} ms`);
});
