import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { KafkaSettings } from '../../config/index.js';
import {
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_HEADER_BYTES,
  READ_CHUNK_BYTES,
  SHARD_FILE_NAME,
  shardFileName,
  validFrameAt,
  zeroFilledAt,
} from './file-journal.js';
import { existingFrameCheck } from './journal-dir.js';
import type { FrameCheck } from './journal-dir.js';
import { KafkaJournal } from './kafka-journal.js';
import type { JournalPayload } from './kafka-journal.js';

/**
 * Read-only access to a journal for its consumers (`stockade tail`, the projectors): every
 * shard's payloads from a position, in batches, without ever writing to the journal (the file
 * journal's own reader truncates a torn tail; this one stops before it, so it is safe next to
 * a running engine). Memory is bounded by one batch: 8 MiB of file, or one Kafka fetch
 * (`kafka.fetchBytesMax`).
 */
export interface JournalSource {
  readonly kind: 'file' | 'kafka';
  /** The shards there are now (file: the shard files in the directory). */
  shards(): number[];
  /** Batches of payloads from `from` to the end at call time, then the position after them. */
  batches(shard: number, from: number): PayloadBatches;
  /** The position after the last payload as far as the source knows (file: where the frames
   *  end now; Kafka: the partition's high-water mark at the last read): the journal side of a
   *  consumer's lag. */
  endPosition(shard: number): number;
  close(): Promise<void>;
}

/** Batches of payloads from a position, then the position after the last one. */
export type PayloadBatches =
  AsyncGenerator<JournalPayload[], number> | Generator<JournalPayload[], number>;

/** A source over an existing Kafka journal topic (one partition per shard). */
export async function kafkaJournalSource(settings: KafkaSettings): Promise<JournalSource> {
  const journal = await KafkaJournal.existing(settings);
  return {
    kind: 'kafka',
    shards: () => Array.from({ length: journal.shards }, (_, i) => i),
    batches: (shard, from) => journal.payloadBatches(shard, from),
    endPosition: (shard) => journal.durablePosition(shard),
    close: () => journal.close(),
  };
}

/**
 * A source over the file journal's directory, opened read-only. `warn` hears about a torn or
 * corrupt frame where a read stops (pass null while following a live journal: the engine may
 * be writing that frame right now).
 *
 * `durable`: hand out only frames that are on disk. The engine writes a group commit into the
 * page cache and then fsyncs it; a reader in between sees a frame that a power loss could still
 * take back, and a projection that stored it would then hold a reservation the journal does not
 * (and, after recovery, a reservation id reused for another one). So before each read the source
 * fdatasyncs the file itself (allowed on a read-only descriptor): whatever it then reads was
 * written before that call and is durable when it returns. One fsync per read of up to the
 * whole file, not per frame.
 *
 * Reads and the fdatasync are asynchronous: `stockade serve --project` runs the projector on
 * the thread that also answers purchases. `endPosition` reads synchronously, but only a frame
 * header walk from the last end it saw (a /metrics scrape, a projector's first look at a shard).
 */
export function fileJournalSource(
  dir: string,
  warn: NodeJS.WritableStream | null,
  options: { durable?: boolean } = {},
): JournalSource {
  const durable = options.durable ?? false;
  const shards = (): number[] =>
    readdirSync(dir)
      .map((name) => SHARD_FILE_NAME.exec(name))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  shards(); // fails now, with the directory's name, if it cannot be listed
  const pathOf = (shard: number): string => join(dir, shardFileName(shard));
  // Where each shard's frames were seen to end: the file's size is no guide once the engine
  // keeps zero-filled space ahead of the end (see file-journal.ts), so the end is found by
  // walking frame headers forward from the last one seen.
  const ends = new Map<number, number>();
  // How frames are checked: from stockade.json, read once it exists (the engine writes it
  // before any shard file).
  let check: FrameCheck | null = null;
  return {
    kind: 'file',
    shards,
    batches: async function* (shard, from) {
      check ??= existingFrameCheck(dir);
      if (check === null) return from; // nothing written yet
      const end = yield* fileBatches(pathOf(shard), from, warn, durable, check);
      ends.set(shard, Math.max(end, ends.get(shard) ?? 0));
      return end;
    },
    endPosition: (shard) => {
      let fd: number;
      try {
        fd = openSync(pathOf(shard), 'r');
      } catch {
        return 0;
      }
      try {
        const end = framesEnd(fd, ends.get(shard) ?? 0, fstatSync(fd).size);
        ends.set(shard, end);
        return end;
      } finally {
        closeSync(fd);
      }
    },
    close: () => Promise.resolve(),
  };
}

const WALK_CHUNK_BYTES = 64 * 1024;

/**
 * Where the frames end: the position after the last whole frame, walking length fields forward
 * from the frame boundary `from` in 64 KiB reads (checksums are checked by the readers, not
 * here). Bounds every read of a source to the frames, never the zeros the engine keeps ahead.
 */
function framesEnd(fd: number, from: number, size: number): number {
  const buf = Buffer.allocUnsafe(WALK_CHUNK_BYTES);
  let step = { pos: from, done: false };
  while (!step.done && step.pos + FRAME_HEADER_BYTES <= size) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - step.pos), step.pos);
    step = walkChunk(buf, n, step.pos, size);
  }
  return step.pos;
}

/** `framesEnd`, reading asynchronously. */
async function framesEndAsync(fh: FileHandle, from: number, size: number): Promise<number> {
  const buf = Buffer.allocUnsafe(WALK_CHUNK_BYTES);
  let step = { pos: from, done: false };
  while (!step.done && step.pos + FRAME_HEADER_BYTES <= size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - step.pos), step.pos);
    step = walkChunk(buf, bytesRead, step.pos, size);
  }
  return step.pos;
}

/**
 * One chunk of the walk: the frame headers in `buf[0, n)`, read at file position `pos`. Done at
 * a zero length (the zero-filled space), a frame running past `size`, or a chunk too short for
 * a header; else the position of the next header, past this chunk, to read on from.
 */
function walkChunk(
  buf: Buffer,
  n: number,
  pos: number,
  size: number,
): { pos: number; done: boolean } {
  let at = 0;
  while (at + FRAME_HEADER_BYTES <= n) {
    const len = buf.readUInt32LE(at);
    if (len === 0 || pos + at + FRAME_HEADER_BYTES + len > size)
      return { pos: pos + at, done: true };
    at += FRAME_HEADER_BYTES + len;
  }
  return { pos: pos + at, done: at === 0 };
}

/**
 * Frames of a journal file from `from`, one read chunk at a time, opened read-only. Stops at
 * the first frame that is torn or corrupt and reports it on `warn` (null while following: the
 * engine may be writing that frame right now).
 */
async function* fileBatches(
  path: string,
  from: number,
  warn: NodeJS.WritableStream | null,
  durable: boolean,
  check: FrameCheck,
): AsyncGenerator<JournalPayload[], number> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return from;
    throw e;
  }
  let pos = from;
  let size = 0;
  let torn = false;
  try {
    size = (await fh.stat()).size;
    // Read up to where the frames end, not the file: the engine keeps zeros ahead of them.
    const end = await framesEndAsync(fh, pos, size);
    // Everything below `end` was written before this call: once it returns, it is on disk.
    if (durable && pos < end) await fh.datasync();
    while (pos < end) {
      const batch = await readFrames(fh, pos, end, check);
      if (batch.length === 0) break;
      pos = batch[batch.length - 1].position;
      yield batch;
    }
    // A 4-byte read from the page cache: not worth a thread-pool round trip.
    torn = pos < size && !zeroFilledAt(fh.fd, pos, size);
  } finally {
    await fh.close();
  }
  if (torn && warn) {
    warn.write(
      `stockade tail: ${path}: the ${size - pos} bytes from position ${pos} are not a ` +
        'complete frame (a torn tail, which recovery cuts off, or --from is not the start ' +
        'of a frame)\n',
    );
  }
  return pos;
}

/** The whole, valid frames in one chunk read at `pos` (at least one if a valid frame is there). */
async function readFrames(
  fh: FileHandle,
  pos: number,
  size: number,
  check: FrameCheck,
): Promise<JournalPayload[]> {
  let buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, size - pos));
  let len = (await fh.read(buf, 0, buf.length, pos)).bytesRead;
  if (len >= FRAME_HEADER_BYTES) {
    const declared = buf.readUInt32LE(0);
    const frameEnd = FRAME_HEADER_BYTES + declared;
    if (declared <= FRAME_BYTES_MAX_DEFAULT && frameEnd > len && pos + frameEnd <= size) {
      // The first frame is larger than a chunk: read it whole.
      buf = Buffer.allocUnsafe(frameEnd);
      len = (await fh.read(buf, 0, buf.length, pos)).bytesRead;
    }
  }
  const out: JournalPayload[] = [];
  let at = 0;
  for (;;) {
    const n = validFrameAt(buf, at, len, FRAME_BYTES_MAX_DEFAULT, check, pos + at);
    if (n < 0) return out;
    at += FRAME_HEADER_BYTES + n;
    out.push({ payload: buf.subarray(at - n, at), position: pos + at });
  }
}
