// The file journal on a nearly full filesystem: a real one, a size-limited tmpfs mounted for
// the test (it needs root, as CI has; elsewhere the test says why it did not run).
import t from 'tap';
import type { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { statSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileJournal } from '../../persistence/journal/index.js';
import { tempDir } from '../engine/helpers.js';

const root = process.getuid?.() === 0;
if (!root && process.env.CI) throw new Error('CI runs as root: this test must not skip there');

/** A tmpfs of `mb` MiB at a fresh directory, unmounted when the test ends. */
function smallFilesystem(t: Test, mb: number): string {
  const dir = tempDir('stockade-fs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir]);
  t.teardown(() => execFileSync('umount', ['-l', dir]));
  return dir;
}

t.test(
  'preallocation shrinks to the room left instead of failing appends that fit',
  { skip: !root && 'needs root to mount a tmpfs' },
  async (t) => {
    const fs = smallFilesystem(t, 8);
    writeFileSync(join(fs, 'filler'), Buffer.alloc(6 << 20, 1)); // 2 MiB left
    const free = () => {
      const s = statfsSync(fs);
      return s.bavail * s.bsize;
    };
    t.ok(free() < 2.5 * 2 ** 20, `${(free() / 2 ** 20).toFixed(2)} MiB free`);
    const dir = join(fs, 'journal');
    const j = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4 << 20 });
    const payload = Buffer.alloc(1000, 7);
    let end = 0;
    for (let i = 0; i < 200; i++) end = await j.append(0, payload); // 200 KB of frames
    t.equal(end, 200 * 1008, 'every append succeeded');
    const size = statSync(join(dir, 'shard-0.journal')).size;
    t.ok(size < 2 << 20, `the file stayed within the room there was (${size} bytes)`);
    await j.close();
    const again = new FileJournal({ dir, durability: 'fsync', preallocBytes: 4 << 20 });
    let n = 0;
    t.equal(await again.read(0, 0, () => n++), end);
    t.equal(n, 200, 'and every frame reads back');
    await again.close();
  },
);
