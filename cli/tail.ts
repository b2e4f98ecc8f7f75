import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
// The one import of actors/ in persistence/: a tool that prints events needs the event decoder,
// and a second copy of it here could drift from the one the engine replays with.
import { decodeEvents } from '../actors/index.js';
import type { SkuEvent } from '../actors/index.js';
import { loadConfig } from '../config/index.js';
import type { StockadeConfig } from '../config/index.js';
import { fileJournalSource, kafkaJournalSource } from '../persistence/journal/index.js';
import type { JournalPayload, JournalSource } from '../persistence/journal/index.js';
import { messageOf, parseCommand } from './command.js';
import type { CommandOptions, ParsedFlags } from './command.js';

/**
 * `stockade tail`: prints the events of a journal, file or Kafka, one line each, without ever
 * writing to it (the file journal's own reader truncates a torn tail; this one only reports it,
 * so it is safe next to a running engine).
 *
 *   journal ──read one batch (≤ 8 MiB)──▶ decode ──lines──▶ out ──await 'drain'──▶ next batch
 *
 * Memory stays bounded by one batch however slow `out` is. With `--follow` it polls every
 * `--poll-ms` for new events until `--limit` events were printed or `signal` aborts (Ctrl-C).
 * Each line carries the shard and the journal position after the payload holding the event:
 * `--from` that position resumes after it.
 */
export const TAIL_USAGE = `usage: stockade tail [options]
  --journal file|kafka   which journal (default: journal.kind from the configuration)
  --shard N              only shard N (default: every shard)
  --from POS             start at position POS of that shard (needs --shard; default 0)
  --follow               keep polling for new events until Ctrl-C
  --poll-ms N            wait between polls with --follow (default 500)
  --limit N              stop after N events
  --format json|text     JSON lines (default) or one readable line per event
  --data-dir DIR         file journal directory (default: journal.dir)
  --kafka-brokers LIST   host:port,... (default: kafka.brokers)
  --kafka-topic TOPIC    (default: kafka.topic)
`;

export interface TailOptions extends CommandOptions {
  /** Stops a `--follow` (or a long read) between batches. */
  signal?: AbortSignal;
}

interface TailArgs {
  journal: string;
  shard: number | null;
  from: number;
  follow: boolean;
  pollMs: number;
  limit: number;
  format: 'json' | 'text';
  config: StockadeConfig;
}

class UsageError extends Error {}

/** Runs `stockade tail argv…`, printing to `out`; resolves to the process exit code. */
export async function tail(
  argv: string[],
  out: NodeJS.WritableStream,
  options: TailOptions = {},
): Promise<number> {
  const err = options.err ?? process.stderr;
  const args = parseCommand(argv, {
    name: 'tail',
    usage: TAIL_USAGE,
    out,
    err,
    ...TAIL_FLAGS,
    build: (flags) => tailArgs(flags, options.env),
  });
  if (typeof args === 'number') return args;
  let source: JournalSource | null = null;
  try {
    source = args.journal === 'kafka' ? await kafkaSource(args) : fileSource(args, err);
    await printAll(args, source, new Printer(out, args.format, args.limit), options.signal);
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EPIPE') return 0; // `stockade tail | head`: the reader has what it wanted
    err.write(`stockade tail: ${typeof code === 'string' ? `${code}: ` : ''}${messageOf(e)}\n`);
    return 1;
  } finally {
    await source?.close();
  }
}

/**
 * tail's `--journal` is its own flag, not the shared one: it picks the journal to read and
 * falls back to `journal.kind`, but never overrides it (`none` or a typo is answered by tail,
 * in its own words, not by the configuration). tail takes no `--config`.
 */
const TAIL_FLAGS = {
  shared: ['data-dir', 'kafka-brokers', 'kafka-topic'],
  own: {
    journal: { type: 'string' },
    shard: { type: 'string' },
    from: { type: 'string' },
    follow: { type: 'boolean', default: false },
    'poll-ms': { type: 'string' },
    limit: { type: 'string' },
    format: { type: 'string', default: 'json' },
  },
} as const;

type TailFlags = ParsedFlags<(typeof TAIL_FLAGS)['own'], (typeof TAIL_FLAGS)['shared'][number]>;

function tailArgs(flags: TailFlags, env: TailOptions['env']): TailArgs {
  const v = flags.values;
  if (v.format !== 'json' && v.format !== 'text') {
    throw new UsageError(`--format must be json or text, got ${v.format}`);
  }
  const config = loadConfig({ env, overrides: flags.configInput });
  const journal = v.journal ?? config.journal.kind;
  if (journal !== 'file' && journal !== 'kafka') {
    const kind = config.journal.kind;
    throw new UsageError(`--journal must be file or kafka (journal.kind is ${kind})`);
  }
  const shard = v.shard === undefined ? null : count('--shard', v.shard);
  if (v.from !== undefined && shard === null) {
    throw new UsageError('--from needs --shard: positions are per shard');
  }
  return {
    journal,
    shard,
    from: v.from === undefined ? 0 : count('--from', v.from),
    follow: v.follow,
    pollMs: v['poll-ms'] === undefined ? 500 : Math.max(1, count('--poll-ms', v['poll-ms'])),
    limit: v.limit === undefined ? Infinity : count('--limit', v.limit),
    format: v.format,
    config,
  };
}

function count(flag: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${flag} must be a whole number, got ${raw}`);
  }
  return n;
}

async function printAll(
  args: TailArgs,
  source: JournalSource,
  printer: Printer,
  signal?: AbortSignal,
): Promise<void> {
  const positions = new Map<number, number>();
  for (;;) {
    const shards = args.shard === null ? source.shards() : [args.shard];
    for (const shard of shards) {
      if (printer.done || signal?.aborted) return;
      const from = positions.get(shard) ?? args.from;
      positions.set(shard, await printShard(source, shard, from, printer, signal));
    }
    if (!args.follow || printer.done || signal?.aborted) return;
    try {
      await delay(args.pollMs, undefined, { signal });
    } catch {
      return; // aborted while waiting
    }
  }
}

/** Prints one shard from `from`; returns the position to continue from. */
async function printShard(
  source: JournalSource,
  shard: number,
  from: number,
  printer: Printer,
  signal?: AbortSignal,
): Promise<number> {
  const batches = source.batches(shard, from);
  let pos = from;
  for (;;) {
    const next = await batches.next();
    if (next.done) return next.value;
    for (const p of next.value) {
      printer.payload(shard, p);
      pos = p.position;
      if (printer.done) break;
    }
    await printer.flush();
    if (printer.done || signal?.aborted) {
      await batches.return(pos);
      return pos;
    }
  }
}

class Printer {
  private printed = 0;
  private chunk: string[] = [];

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly format: 'json' | 'text',
    private readonly limit: number,
  ) {}

  get done(): boolean {
    return this.printed >= this.limit;
  }

  payload(shard: number, p: JournalPayload): void {
    for (const ev of decodeEvents(p.payload)) {
      if (this.done) return;
      const line = this.format === 'json' ? jsonLine : textLine;
      this.chunk.push(line(shard, p.position, ev));
      this.printed++;
    }
  }

  /** Writes what was collected and waits until `out` takes more. */
  async flush(): Promise<void> {
    if (this.chunk.length === 0) return;
    const text = this.chunk.join('');
    this.chunk = [];
    if (!this.out.write(text)) await once(this.out, 'drain');
  }
}

function jsonLine(shard: number, position: number, ev: SkuEvent): string {
  return `{"shard":${shard},"position":${position},${JSON.stringify(ev).slice(1)}\n`;
}

function textLine(shard: number, position: number, ev: SkuEvent): string {
  const head = `${shard}:${position} ${isoTime(ev.at)} ${ev.sku} #${ev.seq} ${ev.type}`;
  switch (ev.type) {
    case 'sku_defined':
    case 'sku_updated': {
      const stock = ev.type === 'sku_defined' ? ` stock=${ev.stock}` : '';
      const window = `starts=${isoTime(ev.startsAt)} ends=${isoTime(ev.endsAt)}`;
      return (
        `${head}${stock} limit=${ev.perUserLimit} hold=${ev.holdTtlMs}ms price=${ev.price} ` +
        `${window} name=${JSON.stringify(ev.name)}\n`
      );
    }
    case 'reserved':
      return (
        `${head} reservation=${ev.reservation} qty=${ev.qty} user=${JSON.stringify(ev.userId)} ` +
        `key=${JSON.stringify(ev.idempotencyKey)} expires=${isoTime(ev.expiresAt)}\n`
      );
    case 'restocked':
      return `${head} qty=${ev.qty}\n`;
    case 'sale_closed':
      return `${head}\n`;
    default:
      return `${head} reservation=${ev.reservation} qty=${ev.qty}\n`;
  }
}

function isoTime(ms: number | null): string {
  const valid = ms !== null && Number.isFinite(ms) && Math.abs(ms) <= 8.64e15;
  return valid ? new Date(ms).toISOString() : '-';
}

// ---- sources ------------------------------------------------------------------------------

async function kafkaSource(args: TailArgs): Promise<JournalSource> {
  const source = await kafkaJournalSource(args.config.kafka);
  const count = source.shards().length;
  if (args.shard !== null && args.shard >= count) {
    await source.close();
    const { topic } = args.config.kafka;
    throw new UsageError(`no shard ${args.shard}: topic ${topic} has ${count} partitions`);
  }
  return source;
}

function fileSource(args: TailArgs, err: NodeJS.WritableStream): JournalSource {
  return fileJournalSource(args.config.journal.dir, args.follow ? null : err);
}
