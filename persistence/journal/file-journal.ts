import {
  closeSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  fsyncSync,
  openSync,
  readSync,
  statfsSync,
  writevSync,
} from 'node:fs';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { frameCheckOf, fsyncDir } from './journal-dir.js';
import type { FrameCheck } from './journal-dir.js';
import { JournalError, VisitorError, visitGuarded } from './journal.js';
import type { Journal, JournalPosition } from './journal.js';

/**
 * The embedded journal: one append-only file per shard, `shard-<n>.journal` in a directory.
 *
 *   file  := frame*
 *   frame := u32 payloadLength | u32 checksum | payload      (little endian)
 *
 * The checksum is CRC-32C(salt ‖ u64 offset ‖ payload), the salt being the directory's own
 * (journal-dir.ts, `FrameCheck`): a frame is valid only where it was written, and no bytes a
 * buyer chooses (an idempotency key inside a payload) can pass for one.
 *
 * One frame per group commit, written with one `writev` and made durable with one `fdatasync`
 * (`durability: 'fsync'`, the default) before `append` resolves. A frame whose length runs
 * past the end of the file or whose checksum does not match is a torn tail: it and everything
 * after it are truncated when the shard's file is first read, never replayed. A frame is only
 * ever written after every frame before it is durable, so nothing valid can follow a torn
 * frame: if a valid frame does follow a bad one, the damage is in the middle of the journal
 * (a disk fault, an outside write), and opening it fails with `journal_corrupt` rather than
 * cut off frames that were acknowledged.
 *
 * The file is fsynced when it is first opened, before it is read: the previous process's last
 * write may still be only in the page cache (it died before its fsync), and nothing may be
 * answered on the strength of bytes a power loss could still take back.
 *
 * A failed write or fdatasync leaves the page cache unreliable ("fsyncgate"): Linux marks the
 * pages whose writeback failed clean, so a read may still see the new bytes while the disk
 * holds the old ones, and later fsyncs on the file report success. So after a failure the file
 * is reopened, cut back to the end of the last frame known durable and fsynced, before it is
 * read or written again; the failed append's frame is then certainly gone, and nothing is ever
 * appended after bytes the disk may not hold.
 *
 * Preallocation (`preallocBytes`, with fsync durability): appending to the end of a file
 * changes its size, and ext4 then has to commit the inode through its own journal on every
 * fdatasync; overwriting blocks that already exist needs only the data flushed. Measured here,
 * an fdatasync after a 3 KB write took 0.14 ms appending and 0.08 ms overwriting, and the HTTP
 * purchase endpoint served 11–25% more requests with 4 MiB at a time. So whenever a frame
 * reaches past the zero-filled space, the same write appends `preallocBytes` of zeros after
 * it: one fsync in many pays for growing the file, the others only overwrite. (A zero-fill in
 * the background, synced on its own, was tried: its large fsync stalled the appends' fsyncs and
 * tripled p99.) When the filesystem has less room than that, the zeros shrink to what fits
 * (and to none, rather than fail an append that fits without them). Zeros read as a frame of
 * length 0, which is never valid: readers stop there (`zeroFilledAt` tells them from a torn
 * frame), and the scan on open cuts the zeros off with any torn tail, reporting as torn only a
 * tail with a byte that is not zero.
 *
 *   file  := frame* zero*
 */
export type Durability = 'fsync' | 'os';

export interface FileJournalOptions {
  dir: string;
  durability: Durability;
  /** Zero-filled space kept ahead of the end (fsync durability only); 0 = none (default). */
  preallocBytes?: number;
  /** Largest payload accepted and believed when reading (a bound on a corrupt length). */
  frameBytesMax?: number;
  /** How frames are checksummed; read from the directory's stockade.json by default. */
  check?: FrameCheck;
}

export const FRAME_HEADER_BYTES = 8;

/** The 8-byte header of a frame for `payload` written at file position `offset`. */
export function frameHeader(payload: Uint8Array, check: FrameCheck, offset: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(check.crc(offset, payload, 0, payload.length), 4);
  return header;
}

/**
 * Checks the frame that starts at `at` in `buf[.., end)`, `offset` being where `at` is in the
 * file: returns its payload length if the whole frame is there and its checksum matches, -1 if
 * it is torn (runs past `end`) or corrupt. The one definition of a valid frame, shared by the
 * file journal, its read-only readers and the simulation's disk.
 */
export function validFrameAt(
  buf: Uint8Array,
  at: number,
  end: number,
  frameBytesMax: number,
  check: FrameCheck,
  offset: number,
): number {
  if (at + FRAME_HEADER_BYTES > end) return -1;
  const len = buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] * 2 ** 24);
  const crc = (buf[at + 4] | (buf[at + 5] << 8) | (buf[at + 6] << 16) | (buf[at + 7] << 24)) >>> 0;
  if (len === 0 || len > frameBytesMax || at + FRAME_HEADER_BYTES + len > end) return -1;
  const p = at + FRAME_HEADER_BYTES;
  return check.crc(offset, buf, p, p + len) === crc ? len : -1;
}
/** How much of a journal file a reader takes per `read` call. */
export const READ_CHUNK_BYTES = 8 * 1024 * 1024;
/** The default bound on one frame (`frameBytesMax`). */
export const FRAME_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;

/** A shard's journal file name in the journal directory; `SHARD_FILE_NAME` parses it back. */
export function shardFileName(shard: number): string {
  return `shard-${shard}.journal`;
}
export const SHARD_FILE_NAME = /^shard-(\d+)\.journal$/;

interface ShardFile {
  fd: number;
  /** Position after the last durable frame; -1 until the file has been scanned. */
  end: number;
  /** Bytes that exist in the file: frames, then zeros. */
  allocated: number;
  writing: boolean;
  /** A write or fsync failed: reopen and cut back to `end` before any other use. */
  broken: boolean;
  truncatedBytes: number;
}

export class FileJournal implements Journal {
  readonly kind = 'file' as const;
  private readonly files = new Map<number, ShardFile>();
  private readonly frameBytesMax: number;
  private readonly preallocBytes: number;
  private readonly check: FrameCheck;

  constructor(private readonly options: FileJournalOptions) {
    this.frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
    this.preallocBytes = options.durability === 'fsync' ? (options.preallocBytes ?? 0) : 0;
    this.check = options.check ?? frameCheckOf(options.dir);
  }

  path(shard: number): string {
    return join(this.options.dir, shardFileName(shard));
  }

  private file(shard: number): ShardFile {
    let f = this.files.get(shard);
    if (!f || f.broken) {
      // After a failure, the end of the last frame known durable (see the class comment).
      const durableEnd = f ? f.end : -1;
      if (f) {
        closeQuietly(f.fd);
        f.fd = -1; // its number may be reused: never close it twice
      }
      const path = this.path(shard);
      // 'a+' creates the file; positioned writes need 'r+' (with 'a+' every write appends).
      closeSync(openSync(path, 'a+'));
      const fd = openSync(path, 'r+');
      try {
        // Every open, not only this process's create: the process that created the file may
        // have died before it made the directory entry durable.
        fsyncDir(dirname(path));
        if (durableEnd >= 0) ftruncateSync(fd, durableEnd);
        // Before anything is read: what is read must already be on disk (see the class comment).
        fsyncSync(fd);
      } catch (err) {
        closeQuietly(fd);
        throw err;
      }
      f = { fd, end: -1, allocated: 0, writing: false, broken: false, truncatedBytes: 0 };
      this.files.set(shard, f);
    }
    return f;
  }

  durablePosition(shard: number): JournalPosition {
    const f = this.files.get(shard);
    return f && f.end > 0 ? f.end : 0;
  }

  /** Bytes cut off the shard's file as a torn or corrupt tail when it was last opened. */
  truncatedBytes(shard: number): number {
    return this.files.get(shard)?.truncatedBytes ?? 0;
  }

  read(
    shard: number,
    from: JournalPosition,
    visit: (payload: Uint8Array, position: JournalPosition) => void,
  ): Promise<JournalPosition> {
    try {
      return Promise.resolve(this.scan(shard, from, visit));
    } catch (err) {
      // The visitor's own error (e.g. a payload that does not decode) is passed on as it is:
      // it is not a reason to think the journal unavailable and try again.
      if (err instanceof VisitorError)
        return Promise.reject(err.cause instanceof Error ? err.cause : err);
      return Promise.reject(
        err instanceof JournalError ? err : unavailable(`reading ${this.path(shard)}`, err),
      );
    }
  }

  /** Reads frames from `from`; on a bad frame truncates the file there. Returns the end. */
  private scan(shard: number, from: number, visit?: (p: Uint8Array, pos: number) => void): number {
    const f = this.file(shard);
    const size = fstatSync(f.fd).size;
    let chunk = Buffer.allocUnsafe(
      Math.min(READ_CHUNK_BYTES, Math.max(size - from, FRAME_HEADER_BYTES)),
    );
    let chunkStart = from;
    let chunkLen = 0;
    let pos = from;
    const fill = (need: number): boolean => {
      // Makes bytes [pos, pos + need) available in `chunk`; false if the file ends first.
      if (pos + need <= chunkStart + chunkLen) return true;
      if (pos + need > size) return false;
      if (need > chunk.length) chunk = Buffer.allocUnsafe(need);
      chunkStart = pos;
      chunkLen = readSync(f.fd, chunk, 0, Math.min(chunk.length, size - pos), pos);
      return chunkLen >= need;
    };
    while (pos < size) {
      if (!fill(FRAME_HEADER_BYTES)) break;
      const declared = chunk.readUInt32LE(pos - chunkStart);
      if (declared === 0 || declared > this.frameBytesMax || !fill(FRAME_HEADER_BYTES + declared))
        break;
      const len = validFrameAt(
        chunk,
        pos - chunkStart,
        chunkLen,
        this.frameBytesMax,
        this.check,
        pos,
      );
      if (len < 0) break;
      const p = pos - chunkStart + FRAME_HEADER_BYTES;
      pos += FRAME_HEADER_BYTES + len;
      // The visitor gets a copy: the chunk buffer is reused for the next reads.
      if (visit) {
        const copy = new Uint8Array(len);
        copy.set(chunk.subarray(p, p + len));
        visitGuarded(visit, copy, pos);
      }
    }
    if (pos < size) {
      // A torn tail, or preallocated zeros: cut it off so it can never be replayed or appended
      // after. Only a tail that starts with a frame header was torn. A valid frame further on
      // means damage in the middle, not a torn tail: refuse to cut it. (With `os` durability
      // the OS may write pages back in any order, so after a crash a later frame can be on
      // disk without an earlier one: losing that tail is what `os` accepts.)
      // (Should the search run out of budget, on a pathological tail, the tail is cut as torn.)
      const later =
        this.options.durability === 'fsync'
          ? validFrameAfter(f.fd, pos, size, this.frameBytesMax, this.check)
          : -1;
      if (later >= 0) {
        throw new JournalError(
          'journal_corrupt',
          `${this.path(shard)}: the frame at byte ${pos} is damaged, yet a valid frame follows at byte ${later}; ` +
            'this is not a torn tail, so nothing was cut (restore the file from a copy, or cut it at the damage knowing the frames after it are lost; ' +
            'a journal written with journal.durability = os may lose pages in any order in an OS crash: opened once with os durability, its tail is cut)',
        );
      }
      // Torn: any byte that is not zero (a frame whose first sector was lost reads as a zero
      // length, yet its later sectors may have reached the disk).
      const torn = endOfData(f.fd, pos, size) > pos;
      ftruncateSync(f.fd, pos);
      fsyncSync(f.fd);
      f.truncatedBytes = torn ? size - pos : 0;
    }
    f.end = pos;
    f.allocated = pos;
    return pos;
  }

  append(shard: number, payload: Uint8Array): Promise<JournalPosition> {
    let f: ShardFile;
    try {
      f = this.file(shard);
      if (f.end < 0) this.scan(shard, 0);
    } catch (err) {
      return Promise.reject(
        err instanceof JournalError ? err : unavailable(`opening ${this.path(shard)}`, err),
      );
    }
    if (f.writing)
      return Promise.reject(new Error(`FileJournal: second append in flight on shard ${shard}`));
    if (payload.length === 0 || payload.length > this.frameBytesMax) {
      return Promise.reject(new RangeError(`FileJournal: payload of ${payload.length} bytes`));
    }
    f.writing = true;
    const at = f.end;
    const header = frameHeader(payload, this.check, at);
    const next = at + FRAME_HEADER_BYTES + payload.length;
    // Past the zero-filled space: the same write lays down the next preallocBytes of zeros, so
    // this fsync pays for growing the file once and the next ones only overwrite.
    let grow = next > f.allocated ? this.zerosThatFit(next - f.allocated) : 0;
    return new Promise((resolve, reject) => {
      const fail = (what: string, err: unknown) => {
        // After a failed write or fsync the page cache can no longer be trusted ("fsyncgate"):
        // the file is reopened and rescanned before anything else is read or written.
        f.writing = false;
        f.broken = true;
        reject(unavailable(`${what} ${this.path(shard)}`, err));
      };
      // The write itself only copies into the page cache: done synchronously it costs a few
      // microseconds and saves a thread-pool round trip; only the fsync waits off-thread.
      try {
        write(f.fd, at, header, payload, grow);
      } catch (err) {
        if (grow === 0) return fail('writing', err);
        // The room went between the look and the write: the frame alone may still fit.
        grow = 0;
        try {
          write(f.fd, at, header, payload, 0);
        } catch (again) {
          return fail('writing', again);
        }
      }
      const done = () => {
        // One append in flight per shard: nothing may have moved the end underneath this one.
        if (f.end !== at) assert.fail(`${this.path(shard)}: the end moved during an append`);
        f.writing = false;
        f.end = next;
        if (next + grow > f.allocated) f.allocated = next + grow;
        resolve(f.end);
      };
      if (this.options.durability === 'os') return done();
      fdatasync(f.fd, (err) => (err ? fail('syncing', err) : done()));
    });
  }

  /**
   * The zeros to lay down past a frame that grows the file by `growing` bytes: preallocBytes, or
   * what the filesystem has room for (keeping 1 MiB spare), in whole 4 KiB blocks.
   */
  private zerosThatFit(growing: number): number {
    if (this.preallocBytes === 0) return 0;
    let free: number;
    try {
      const fs = statfsSync(this.options.dir);
      free = fs.bavail * fs.bsize;
    } catch {
      return this.preallocBytes;
    }
    const room = free - growing - SPACE_SPARE_BYTES;
    return room >= this.preallocBytes ? this.preallocBytes : Math.max(0, room - (room % 4096));
  }

  close(): Promise<void> {
    for (const f of this.files.values()) closeQuietly(f.fd);
    this.files.clear();
    return Promise.resolve();
  }
}

/** Room the preallocation leaves free on the filesystem. */
const SPACE_SPARE_BYTES = 1 << 20;

/** Writes a frame at `at`, and `grow` zeros after it, in one call; throws if short. */
function write(fd: number, at: number, header: Buffer, payload: Uint8Array, grow: number): void {
  const buffers = grow > 0 ? [header, payload, zeros(grow)] : [header, payload];
  const want = FRAME_HEADER_BYTES + payload.length + grow;
  const written = writevSync(fd, buffers, at);
  if (written !== want) throw new Error(`short write (${written} of ${want} bytes)`);
}

/**
 * How far past the last non-zero byte a frame written after a damaged one may end (trailing zeros
 * of its own payload).
 */
const SEARCH_SLACK_BYTES = 64 * 1024;
/** Checksum work the search may do (~0.1 s here); past it, it gives up (`SEARCH_GAVE_UP`). */
const SEARCH_CRC_BUDGET_BYTES = 128 * 1024 * 1024;
/** `validFrameAfter` spent its budget without an answer. */
const SEARCH_GAVE_UP = -2;

/**
 * The position of a valid frame that starts after `pos` (where a bad frame is) in the file's
 * first `size` bytes: -1 if there is none, `SEARCH_GAVE_UP` if the search ran out of budget.
 * First where the bad frame's own header says the next one starts (a payload damaged under an
 * intact header); then anywhere up to where the written bytes end. Frames are contiguous and
 * the journal writes only zeros after its last frame, so a frame written after the damage ends
 * by the last non-zero byte (give or take its payload's trailing zeros): a candidate that would
 * run further into the zeros is not one, which keeps a torn frame over megabytes of
 * preallocated zeros from costing a checksum over the zeros at every byte. And a candidate
 * counts only if valid frames chain from it to where the written bytes end, as the frames
 * written after real damage do: a frame's bytes found inside a torn commit's payload (a
 * buyer's idempotency key made to look like one) are followed by the rest of that payload.
 * (Format 2 frames, tied to their directory and offset, cannot be forged that way at all; the
 * chain is what protects format 1 directories.)
 */
export function validFrameAfter(
  fd: number,
  pos: number,
  size: number,
  frameBytesMax: number,
  check: FrameCheck,
): number {
  let budget = SEARCH_CRC_BUDGET_BYTES;
  const head = Buffer.alloc(FRAME_HEADER_BYTES);
  let payload = Buffer.alloc(0);
  /**
   * Whether a valid frame of `len` bytes with checksum `crc` starts at file position `at`
   * (its payload taken from `buf` at `from` when the caller has it, else read); null: no budget.
   */
  const matches = (
    at: number,
    len: number,
    crc: number,
    buf?: Buffer,
    from = 0,
  ): boolean | null => {
    if (len > budget) return null;
    budget -= len;
    if (!buf) {
      if (payload.length < len) payload = Buffer.allocUnsafe(len);
      if (readSync(fd, payload, 0, len, at + FRAME_HEADER_BYTES) !== len) return false;
      buf = payload;
    }
    return check.crc(at, buf, from, from + len) === crc;
  };
  const dataEnd = endOfData(fd, pos, size);
  const counts = (at: number) => chainsToEnd(fd, at, dataEnd, frameBytesMax, check);
  if (readSync(fd, head, 0, FRAME_HEADER_BYTES, pos) === FRAME_HEADER_BYTES) {
    const next = pos + FRAME_HEADER_BYTES + head.readUInt32LE(0);
    if (
      next > pos + FRAME_HEADER_BYTES &&
      next + FRAME_HEADER_BYTES < size &&
      readSync(fd, head, 0, FRAME_HEADER_BYTES, next) === FRAME_HEADER_BYTES
    ) {
      const len = head.readUInt32LE(0);
      if (len > 0 && len <= frameBytesMax && next + FRAME_HEADER_BYTES + len <= size) {
        const ok = matches(next, len, head.readUInt32LE(4));
        if (ok === null) return SEARCH_GAVE_UP;
        if (ok && counts(next)) return next;
      }
    }
  }
  const limit = Math.min(size, dataEnd + SEARCH_SLACK_BYTES);
  const chunk = Buffer.allocUnsafe(
    Math.min(READ_CHUNK_BYTES, Math.max(FRAME_HEADER_BYTES, limit - pos)),
  );
  for (let start = pos + 1; start < dataEnd && start + FRAME_HEADER_BYTES <= limit;) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, limit - start), start);
    if (n < FRAME_HEADER_BYTES) return -1;
    // Candidates whose header lies wholly in this chunk; the next chunk starts at the first
    // candidate not checked.
    const last = Math.min(n - FRAME_HEADER_BYTES, dataEnd - 1 - start);
    for (let i = 0; i <= last; i++) {
      const len = chunk.readUInt32LE(i);
      if (len === 0 || len > frameBytesMax || start + i + FRAME_HEADER_BYTES + len > limit)
        continue;
      const inChunk = i + FRAME_HEADER_BYTES + len <= n;
      const ok = matches(
        start + i,
        len,
        chunk.readUInt32LE(i + 4),
        inChunk ? chunk : undefined,
        i + FRAME_HEADER_BYTES,
      );
      if (ok === null) return SEARCH_GAVE_UP;
      if (ok && counts(start + i)) return start + i;
    }
    start += last + 1;
  }
  return -1;
}

/** Whether valid frames follow one another from `at` until the written bytes end. */
function chainsToEnd(
  fd: number,
  at: number,
  dataEnd: number,
  frameBytesMax: number,
  check: FrameCheck,
): boolean {
  const head = Buffer.alloc(FRAME_HEADER_BYTES);
  let payload = Buffer.alloc(0);
  for (let pos = at; pos < dataEnd;) {
    if (readSync(fd, head, 0, FRAME_HEADER_BYTES, pos) !== FRAME_HEADER_BYTES) return false;
    const len = head.readUInt32LE(0);
    if (len === 0 || len > frameBytesMax) return false;
    if (payload.length < len) payload = Buffer.allocUnsafe(len);
    if (readSync(fd, payload, 0, len, pos + FRAME_HEADER_BYTES) !== len) return false;
    if (check.crc(pos, payload, 0, len) !== head.readUInt32LE(4)) return false;
    pos += FRAME_HEADER_BYTES + len;
  }
  return true;
}

/** The position after the last non-zero byte in `[pos, size)`, or `pos` if all are zero. */
function endOfData(fd: number, pos: number, size: number): number {
  const chunk = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, size - pos)));
  for (let end = size; end > pos;) {
    const from = Math.max(pos, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - from, from);
    for (let i = n - 1; i >= 0; i--) if (chunk[i] !== 0) return from + i + 1;
    end = from;
  }
  return pos;
}

/**
 * Whether the bytes at `pos` (where valid frames stop) are the zero-filled space the journal
 * keeps ahead of its frames, rather than a torn or corrupt frame: a zero length field.
 */
export function zeroFilledAt(fd: number, pos: number, size: number): boolean {
  const head = Buffer.alloc(4);
  return readSync(fd, head, 0, Math.min(4, size - pos), pos) > 0 && head.readUInt32LE(0) === 0;
}

let zeroBuffer = Buffer.alloc(0);
/** `n` zero bytes, a view of one shared buffer that is never written to. */
function zeros(n: number): Buffer {
  if (zeroBuffer.length < n) zeroBuffer = Buffer.alloc(n);
  return zeroBuffer.subarray(0, n);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
}

function unavailable(what: string, cause: unknown): JournalError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new JournalError('journal_unavailable', `${what}: ${detail}`, { cause });
}
