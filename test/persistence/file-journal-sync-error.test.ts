// A failed fdatasync ("fsyncgate"): Linux marks the pages whose writeback failed clean, so the
// page cache may show a frame the disk does not hold, and later fsyncs report success. The
// journal must never read that frame back or append after it. The failures are injected by
// replacing node:fs functions in this test process only (tap runs each file in its own).
import t from 'tap';
import fs, { statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { FileJournal } from '../../persistence/journal/index.js';
import { tempDir } from '../engine/helpers.js';

const payload = (n: number, size = 100) =>
  Uint8Array.from({ length: size }, (_, i) => (n * 31 + i) & 0xff);
const eio = (call: string) =>
  Object.assign(new Error(`EIO: i/o error, ${call}`), { code: 'EIO', errno: -5 });

const realFdatasync = fs.fdatasync;
const realFtruncateSync = fs.ftruncateSync;
const realFsyncSync = fs.fsyncSync;
let failSyncs = 0;
let failTruncates = 0;
let failOpenSyncs = 0;
fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
  if (failSyncs > 0) {
    failSyncs--;
    setImmediate(() => cb(eio('fdatasync')));
    return;
  }
  realFdatasync(fd, cb);
}) as typeof fs.fdatasync;
fs.ftruncateSync = (fd: number, len?: number) => {
  if (failTruncates > 0) {
    failTruncates--;
    throw eio('ftruncate');
  }
  realFtruncateSync(fd, len);
};
fs.fsyncSync = (fd: number) => {
  if (failOpenSyncs > 0) {
    failOpenSyncs--;
    throw eio('fsync');
  }
  realFsyncSync(fd);
};
syncBuiltinESMExports();
t.teardown(() => {
  fs.fdatasync = realFdatasync;
  fs.ftruncateSync = realFtruncateSync;
  fs.fsyncSync = realFsyncSync;
  syncBuiltinESMExports();
});

async function readAll(j: FileJournal) {
  const got: Uint8Array[] = [];
  await j.read(0, 0, (p) => got.push(p));
  return got;
}

t.test(
  'after a failed fdatasync the frame is cut off before anything is read or appended',
  async (t) => {
    const dir = tempDir();
    const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4096 });
    t.equal(await j.append(0, payload(1)), 108);
    failSyncs = 1;
    await t.rejects(j.append(0, payload(2)), {
      code: 'journal_unavailable',
      message: /syncing.*EIO/,
    });
    // Its bytes are in the page cache; the disk may hold zeros there. Either way they are gone.
    t.same(await readAll(j), [payload(1)], 'the rebuild reads only what was durable');
    t.equal(await j.append(0, payload(3)), 216, 'the next frame goes where the failed one was');
    t.same(await readAll(new FileJournal({ dir, durability: 'fsync' })), [payload(1), payload(3)]);
  },
);

t.test('if the file cannot be cut back, nothing is read or appended until it can', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'shard-0.journal');
  const j = new FileJournal({ dir, durability: 'fsync' });
  await j.append(0, payload(1));
  failSyncs = 1;
  await t.rejects(j.append(0, payload(2)), { code: 'journal_unavailable' });
  const size = statSync(file).size;
  failTruncates = 2;
  await t.rejects(readAll(j), { code: 'journal_unavailable', message: /EIO/ }, 'a read');
  await t.rejects(
    j.append(0, payload(3)),
    { code: 'journal_unavailable', message: /EIO/ },
    'an append',
  );
  t.equal(statSync(file).size, size, 'nothing was written meanwhile');
  t.same(await readAll(j), [payload(1)], 'once the cut succeeds, only the durable frame');
  t.equal(statSync(file).size, 108, 'cut back to the durable frame');
  t.same(
    await readAll(new FileJournal({ dir, durability: 'fsync' })),
    [payload(1)],
    'as a fresh reader sees it',
  );
});

t.test(
  'a shard file is made durable when it is opened, before anything is read from it',
  async (t) => {
    // The previous process may have died between its write and its fsync: its last frame can be
    // in the page cache only. Nothing may be read (and answered from) until it is on disk.
    const dir = tempDir();
    const j = new FileJournal({ dir, durability: 'os' });
    await j.append(0, payload(1));
    await j.close();
    failOpenSyncs = 1;
    const reader = new FileJournal({ dir, durability: 'fsync' });
    const seen: Uint8Array[] = [];
    await t.rejects(
      reader.read(0, 0, (p) => seen.push(p)),
      { code: 'journal_unavailable', message: /EIO/ },
      'an open whose fsync fails reads nothing',
    );
    t.same(seen, [], 'not one frame was handed out');
    t.same(await readAll(reader), [payload(1)], 'once the fsync succeeds, the frame is read');
  },
);
