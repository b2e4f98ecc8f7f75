// The file journal's directory: frames tied to their directory and offset (format 2), format-1
// directories still readable, and the lock that keeps a second process out.
import t from 'tap';
import {
  closeSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { EngineError } from '../../engine/index.js';
import {
  FRAME_HEADER_BYTES,
  FileJournal,
  FrameCheck,
  crc32c,
  frameHeader,
  lockJournalDir,
  prepareJournalDir,
  validFrameAt,
} from '../../persistence/journal/index.js';
import { tempDir, testEngine } from '../engine/helpers.js';

const fileJournal = (dir: string) => ({
  engine: { shards: 1 },
  journal: { kind: 'file' as const, dir, durability: 'fsync' as const, preallocBytes: 64 * 1024 },
});
const payload = (n: number, size = 100) =>
  Uint8Array.from({ length: size }, (_, i) => (n * 31 + i) & 0xff);

/** The start of every frame in a shard file, walked with the directory's own check. */
function frameStarts(file: string, check: FrameCheck): number[] {
  const bytes = readFileSync(file);
  const starts: number[] = [];
  for (let pos = 0; ;) {
    const len = validFrameAt(bytes, pos, bytes.length, 1 << 30, check, pos);
    if (len < 0) return starts;
    starts.push(pos);
    pos += FRAME_HEADER_BYTES + len;
  }
}

/**
 * An idempotency key whose UTF-8 bytes are themselves a frame as format 1 checked them:
 * `len | crc32c(payload) | payload`, all ASCII so the bytes survive the encoding unchanged.
 */
function keyThatIsAFrame(): string {
  for (let n = 0; ; n++) {
    const body = Buffer.from(`forged-frame-${n}-${'x'.repeat(40)}`, 'latin1');
    const header = Buffer.alloc(8);
    header.writeUInt32LE(body.length, 0);
    header.writeUInt32LE(crc32c(body), 4);
    if (header.every((b) => b < 0x80)) return Buffer.concat([header, body]).toString('latin1');
  }
}

t.test(
  'a torn commit whose payload holds a buyer-made frame recovers as a torn tail',
  async (t) => {
    const dir = tempDir();
    const a = await testEngine(fileJournal(dir));
    await a.defineSku({ sku: 'tee', stock: 5 });
    t.match(await a.reserve({ sku: 'tee', userId: 'u1', qty: 1, idempotencyKey: 'k1' }), {
      status: 'reserved',
    });
    const key = keyThatIsAFrame();
    // One group commit: the key's event, then another after it in the same payload.
    const last2 = await a.reserveMany([
      { sku: 'tee', userId: 'u2', qty: 1, idempotencyKey: key },
      { sku: 'tee', userId: 'u3', qty: 1, idempotencyKey: 'k3' },
    ]);
    t.match(last2, [{ status: 'reserved' }, { status: 'reserved' }]);
    await a.close();
    // A power loss tore the last commit (its reply was never sent): the part with the key reached
    // the disk, the end of the frame did not, and the preallocated zeros are still after it.
    const file = join(dir, 'shard-0.journal');
    const check = prepareJournalDir(dir, 1);
    const last = frameStarts(file, check).at(-1)!;
    const bytes = readFileSync(file);
    const keyAt = bytes.indexOf(Buffer.from(key, 'latin1'), last);
    t.ok(keyAt > last, 'the key sits inside the last frame');
    const cut = keyAt + key.length + 2;
    bytes.fill(0, cut);
    writeFileSync(file, bytes);
    // Format 1 took the key for a valid frame after the torn one, and refused the whole journal.
    const b = await testEngine(fileJournal(dir));
    t.teardown(() => b.close());
    t.match(
      await b.getSku('tee'),
      { reserved: 1, available: 4 },
      'recovered up to the torn commit',
    );
    t.equal(statSync(file).size, last, 'the torn commit was cut off');
  },
);

t.test(
  'a valid frame counts only where it was written, and only in its own directory',
  async (t) => {
    const dir = tempDir();
    const check = prepareJournalDir(dir, 1);
    const j = new FileJournal({ dir, durability: 'fsync' });
    await j.append(0, payload(1));
    await j.close();
    const bytes = readFileSync(join(dir, 'shard-0.journal'));
    t.equal(validFrameAt(bytes, 0, bytes.length, 1 << 30, check, 0), 100, 'at offset 0');
    t.equal(
      validFrameAt(bytes, 0, bytes.length, 1 << 30, check, 108),
      -1,
      'the same bytes at offset 108',
    );
    const other = prepareJournalDir(tempDir(), 1);
    t.equal(
      validFrameAt(bytes, 0, bytes.length, 1 << 30, other, 0),
      -1,
      "another directory's check",
    );
    const meta = JSON.parse(readFileSync(join(dir, 'stockade.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    t.match(meta, { format: 2, shards: 1, frameSalt: /^[0-9a-f]{16}$/ });
  },
);

t.test(
  'a format-1 directory (checksum of the payload alone) is still read and appended to',
  async (t) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'stockade.json'), JSON.stringify({ format: 1, shards: 1 }));
    const file = join(dir, 'shard-0.journal');
    const old = payload(1);
    writeFileSync(file, Buffer.concat([frameHeader(old, FrameCheck.legacy, 0), old]));
    const j = new FileJournal({ dir, durability: 'fsync' });
    const got: Uint8Array[] = [];
    t.equal(await j.read(0, 0, (p) => got.push(p)), 108);
    t.same(got, [old]);
    t.equal(await j.append(0, payload(2)), 216);
    await j.close();
    t.same(frameStarts(file, FrameCheck.legacy), [0, 108], 'the new frame in the old format');
    t.equal(prepareJournalDir(dir, 1), FrameCheck.legacy);
  },
);

t.test('a torn frame whose first sector was lost is reported as torn', async (t) => {
  const dir = tempDir();
  const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 16 * 1024 });
  const end = await j.append(0, payload(1));
  await j.close();
  // The next frame's later sectors reached the disk, its first (with the header) did not: a
  // zero length where it starts, data after it.
  const file = join(dir, 'shard-0.journal');
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(600, 7), 0, 600, end + 512);
  closeSync(fd);
  const size = statSync(file).size;
  const again = new FileJournal({ dir, durability: 'fsync' });
  await again.read(0, 0, () => {});
  t.equal(again.truncatedBytes(0), size - end, 'the cut tail is reported, not taken for zeros');
  await again.close();
});

t.test('one process at a time writes a journal directory', async (t) => {
  const dir = tempDir();
  const a = await testEngine(fileJournal(dir));
  const second = await testEngine(fileJournal(dir)).then(
    () => null,
    (err: unknown) => err,
  );
  t.ok(second instanceof EngineError);
  t.match(second, {
    code: 'journal_locked',
    retriable: false,
    message: new RegExp(`in use by pid ${process.pid} on `),
  });
  await a.defineSku({ sku: 'tee', stock: 2 });
  await a.close();
  const c = await testEngine(fileJournal(dir));
  t.teardown(() => c.close());
  t.match(await c.getSku('tee'), { available: 2 }, 'once the first closed, the next one opens it');
  await t.rejects(lockJournalDir(dir), { code: 'journal_locked' }, 'the lock itself refuses');
});

t.test(
  'a format-1 directory: a buyer-made frame in a torn commit does not chain to the end',
  async (t) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'stockade.json'), JSON.stringify({ format: 1, shards: 1 }));
    const a = await testEngine(fileJournal(dir));
    await a.defineSku({ sku: 'tee', stock: 5 });
    t.match(await a.reserve({ sku: 'tee', userId: 'u1', qty: 1, idempotencyKey: 'k1' }), {
      status: 'reserved',
    });
    const key = keyThatIsAFrame(); // a valid frame by format 1's rule (the payload's CRC alone)
    await a.reserveMany([
      { sku: 'tee', userId: 'u2', qty: 1, idempotencyKey: key },
      { sku: 'tee', userId: 'u3', qty: 1, idempotencyKey: 'k3' },
    ]);
    await a.close();
    const file = join(dir, 'shard-0.journal');
    const last = frameStarts(file, FrameCheck.legacy).at(-1)!;
    const bytes = readFileSync(file);
    const cut = bytes.indexOf(Buffer.from(key, 'latin1'), last) + key.length + 2;
    bytes.fill(0, cut);
    writeFileSync(file, bytes);
    const b = await testEngine(fileJournal(dir));
    t.teardown(() => b.close());
    t.match(await b.getSku('tee'), { reserved: 1 }, 'recovered up to the torn commit');
  },
);

t.test('shard files without stockade.json are read as format 1, not cut as torn', async (t) => {
  const dir = tempDir();
  const a = await testEngine(fileJournal(dir));
  await a.defineSku({ sku: 'tee', stock: 5 });
  t.match(await a.reserve({ sku: 'tee', userId: 'u1', qty: 1, idempotencyKey: 'k1' }), {
    status: 'reserved',
  });
  await a.close();
  // Written in format 1 (the checksum of the payload alone) by a version before stockade.json
  // had a salt, then its stockade.json lost: a fresh salt would make every frame look torn.
  const file = join(dir, 'shard-0.journal');
  const check = prepareJournalDir(dir, 1);
  const frames: Buffer[] = [];
  const bytes = readFileSync(file);
  for (const at of frameStarts(file, check)) {
    const len = bytes.readUInt32LE(at);
    const p = bytes.subarray(at + 8, at + 8 + len);
    frames.push(frameHeader(p, FrameCheck.legacy, 0), p);
  }
  writeFileSync(file, Buffer.concat(frames));
  rmSync(join(dir, 'stockade.json'));
  const b = await testEngine(fileJournal(dir));
  t.teardown(() => b.close());
  t.match(await b.getSku('tee'), { reserved: 1, available: 4 }, 'every frame kept');
  t.match(JSON.parse(readFileSync(join(dir, 'stockade.json'), 'utf8')), { format: 1 });
});

t.test("a connection to the directory's lock does not hold up its release", async (t) => {
  const dir = tempDir();
  const lock = await lockJournalDir(dir);
  const id = readFileSync(join(dir, 'stockade.lockid'), 'utf8').trim();
  const socket = connect(`\0stockade-journal-lock/${id}`);
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
  const released = await Promise.race([
    lock.release().then(() => true),
    new Promise((resolve) => setTimeout(() => resolve(false), 2000)),
  ]);
  t.ok(released, 'released at once');
  socket.destroy();
  const again = await lockJournalDir(dir);
  await again.release();
});
