/**
 * The file journal's directory: `stockade.json`, which says how many shards wrote it and how its
 * frames are checked, and the lock that keeps a second process out while one writes.
 *
 *   stockade.json := { "format": 2, "shards": N, "frameSalt": "<16 hex digits>" }
 *
 * Format 2 ties every frame to its directory and its place in the file: a frame's checksum is
 * CRC-32C(frameSalt ‖ u64 offset ‖ payload) (see `FrameCheck`). Recovery looks for a valid frame
 * after a damaged one to tell damage in the middle (refused) from a torn tail (cut); with a
 * checksum of the payload alone, a buyer could make that search find a "frame" inside a group
 * commit's payload (an idempotency key whose bytes are `len | crc | payload`), so a torn last
 * write made recovery refuse the journal. The salt is random per directory and never leaves it;
 * the offset keeps even the journal's own frames from counting anywhere but where they were
 * written. Directories of format 1 (checksum of the payload alone) are still read and written.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import { JournalError } from './journal.js';

const META_FILE = 'stockade.json';
const LOCK_FILE = 'stockade.lock';
/** A random name for the directory's lock, readable only by who may read the directory. */
const LOCK_ID_FILE = 'stockade.lockid';
const SHARD_FILE = /^shard-\d+\.journal$/;
/** The format new directories get; 1 is still read and written. */
const FORMAT = 2;

/** How the frames of one journal directory are checksummed (see the file comment). */
export class FrameCheck {
  /** CRC-32C of the salt, where each frame's checksum starts; null for format 1. */
  private readonly saltCrc: number | null;
  private readonly offsetBytes = Buffer.alloc(8);

  private constructor(
    readonly format: 1 | 2,
    salt: Uint8Array | null,
  ) {
    this.saltCrc = salt === null ? null : crc32c(salt);
  }

  /** Format 2, with the directory's salt. */
  static salted(salt: Uint8Array): FrameCheck {
    return new FrameCheck(2, salt);
  }

  /** Format 1: the checksum of the payload alone. */
  static readonly legacy = new FrameCheck(1, null);

  /** The checksum of the frame at file `offset` whose payload is `buf[start, end)`. */
  crc(offset: number, buf: Uint8Array, start: number, end: number): number {
    if (this.saltCrc === null) return crc32c(buf, start, end);
    const o = this.offsetBytes;
    o.writeUInt32LE(offset % 2 ** 32, 0);
    o.writeUInt32LE(Math.floor(offset / 2 ** 32), 4);
    return crc32c(buf, start, end, crc32c(o, 0, 8, this.saltCrc));
  }
}

interface Meta {
  format: 1 | 2;
  /** null while only a bare FileJournal has used the directory (see `frameCheckOf`). */
  shards: number | null;
  check: FrameCheck;
}

function metaPath(dir: string): string {
  return join(dir, META_FILE);
}

function readMeta(dir: string): Meta | null {
  const path = metaPath(dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let raw: { format?: unknown; shards?: unknown; frameSalt?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch (err) {
    throw new JournalError('journal_corrupt', `${path} is not valid JSON`, { cause: err });
  }
  const shards = typeof raw.shards === 'number' ? raw.shards : null;
  if (raw.format === 1) return { format: 1, shards, check: FrameCheck.legacy };
  if (raw.format !== FORMAT) {
    throw new JournalError(
      'journal_mismatch',
      `${path}: journal format ${String(raw.format)}, expected 1 or ${FORMAT}`,
    );
  }
  if (typeof raw.frameSalt !== 'string' || !/^[0-9a-f]{16}$/.test(raw.frameSalt)) {
    throw new JournalError('journal_corrupt', `${path}: frameSalt must be 16 hex digits`);
  }
  return { format: 2, shards, check: FrameCheck.salted(Buffer.from(raw.frameSalt, 'hex')) };
}

function metaText(format: number, shards: number | null, salt: string | null): string {
  const meta: Record<string, unknown> = { format };
  if (shards !== null) meta.shards = shards;
  if (salt !== null) meta.frameSalt = salt;
  return JSON.stringify(meta, null, 2) + '\n';
}

/**
 * Writes `name` in `dir` whole or not at all, durably. `replace`: over the file there;
 * otherwise only if there is none, so two writers of a new directory agree on one content (the
 * loser reads the winner's). A filesystem without hard links (vfat, some FUSE) gets an
 * exclusive create instead: still one winner, though a crash mid-write can leave it partial.
 */
function writeExclusive(dir: string, name: string, text: string, replace: boolean): void {
  const path = join(dir, name);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { flush: true });
  try {
    if (replace) renameSync(temp, path);
    else linkSync(temp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      writeFileSync(path, text, { flag: 'wx', flush: true });
    } else if (code !== 'EEXIST') throw err;
  } finally {
    rmSync(temp, { force: true });
  }
  fsyncDir(dir);
}

function writeMeta(dir: string, text: string, replace: boolean): void {
  writeExclusive(dir, META_FILE, text, replace);
}

/**
 * A directory with shard files and no stockade.json predates it (or lost it): its frames are
 * format 1, and a new salt would make every frame look torn and cut them all. It gets a format
 * 1 stockade.json instead.
 */
function newMetaText(dir: string, shards: number | null): string {
  const existing = readdirSync(dir).some((name) => SHARD_FILE.test(name));
  return existing
    ? metaText(1, shards, null)
    : metaText(FORMAT, shards, randomBytes(8).toString('hex'));
}

function saltOf(meta: Meta, dir: string): string | null {
  if (meta.format === 1) return null;
  return (JSON.parse(readFileSync(metaPath(dir), 'utf8')) as { frameSalt: string }).frameSalt;
}

/**
 * Creates the journal directory, or checks one that exists: its shard count must match the
 * configuration, because SKUs are placed on shards by hash and a different count would replay
 * each SKU's events on the wrong shard. Returns how its frames are checked.
 */
export function prepareJournalDir(dir: string, shards: number): FrameCheck {
  mkdirSync(dir, { recursive: true });
  let meta = readMeta(dir);
  if (meta === null) {
    writeMeta(dir, newMetaText(dir, shards), false);
    meta = readMeta(dir)!;
  }
  if (meta.shards === null) {
    writeMeta(dir, metaText(meta.format, shards, saltOf(meta, dir)), true);
    return meta.check;
  }
  if (meta.shards !== shards) {
    throw new JournalError(
      'journal_mismatch',
      `the journal in ${dir} was written by ${meta.shards} shards but engine.shards is ${shards}; ` +
        'start with the same shard count (SKUs are placed on shards by hash)',
    );
  }
  return meta.check;
}

/**
 * How the frames in `dir` are checked, for a FileJournal opened on it. A directory no engine
 * has prepared (a FileJournal used on its own) gets a stockade.json without a shard count.
 */
export function frameCheckOf(dir: string): FrameCheck {
  mkdirSync(dir, { recursive: true });
  const meta = readMeta(dir);
  if (meta !== null) return meta.check;
  writeMeta(dir, newMetaText(dir, null), false);
  return readMeta(dir)!.check;
}

/** The frame check of an existing directory, for readers; null while it has no stockade.json. */
export function existingFrameCheck(dir: string): FrameCheck | null {
  return readMeta(dir)?.check ?? null;
}

/** Makes a directory's entries (a file created or renamed in it) durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Held while a process writes a journal directory; `release` lets the next one in. */
export interface JournalDirLock {
  release(): Promise<void>;
}

/**
 * Takes the directory's lock for this process, or fails with `journal_locked`: two processes
 * appending to one shard file each at their own end lose acknowledged reservations.
 *
 * The lock is a Unix socket in Linux's abstract namespace: binding a name another socket holds
 * fails, and the kernel frees the name when its socket closes, which it does when the process
 * dies however it dies (kill -9 included), so no stale lock outlives its holder. (Node has no
 * flock(2).) The name is the directory's own random id (`stockade.lockid`, made once, one
 * writer winning), so only who can read the directory can find the name: nobody else can take
 * it first or connect to it (a connection is dropped at once anyway, so that it cannot hold up
 * `release`). The name lives in the network namespace, so processes in different containers
 * sharing one volume do not see each other's lock: run one server per data directory.
 * Elsewhere than Linux, `stockade.lock` is created exclusively and holds the PID; one whose PID
 * is no longer alive is taken over (best effort: two processes taking over the same stale
 * lock at the same moment can both succeed). Either way `stockade.lock` names the holder, for
 * the message a refused process prints.
 */
export async function lockJournalDir(dir: string): Promise<JournalDirLock> {
  mkdirSync(dir, { recursive: true });
  const lockPath = join(dir, LOCK_FILE);
  const owner = `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`;
  if (process.platform !== 'linux') return pidFileLock(dir, lockPath, owner);
  const server = createServer((socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(`\0stockade-journal-lock/${lockId(dir)}`, resolve);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw lockedError(dir, lockPath);
    throw err;
  }
  server.unref(); // the lock must not keep the process alive
  const release = () => new Promise<void>((resolve) => server.close(() => resolve()));
  try {
    writeFileSync(lockPath, owner);
  } catch (err) {
    await release();
    throw err;
  }
  return { release };
}

/** The directory's lock id, made on first use (the first of two racing makers wins). */
function lockId(dir: string): string {
  const path = join(dir, LOCK_ID_FILE);
  if (!existsSync(path)) writeExclusive(dir, LOCK_ID_FILE, randomBytes(16).toString('hex'), false);
  return readFileSync(path, 'utf8').trim();
}

function pidFileLock(dir: string, lockPath: string, owner: string): JournalDirLock {
  const create = () => writeFileSync(lockPath, owner, { flag: 'wx' });
  try {
    create();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const pid = Number(/^pid (\d+)/.exec(readFileSync(lockPath, 'utf8'))?.[1]);
    if (!Number.isInteger(pid) || isAlive(pid)) throw lockedError(dir, lockPath);
    rmSync(lockPath, { force: true }); // its holder died: take it over
    try {
      create();
    } catch {
      throw lockedError(dir, lockPath); // another process took it over first
    }
  }
  const release = () => {
    rmSync(lockPath, { force: true });
    return Promise.resolve();
  };
  return { release };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(dir: string, lockPath: string): JournalError {
  const holder = existsSync(lockPath) ? readFileSync(lockPath, 'utf8').trim() : 'another process';
  return new JournalError(
    'journal_locked',
    `the journal directory ${dir} is in use by ${holder}; one process at a time may write it ` +
      '(stop that one, or give this one its own --data-dir)',
  );
}
