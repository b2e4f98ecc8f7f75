import { setTimeout as delay } from 'node:timers/promises';
import type { Pool } from 'mysql2/promise';
import { loadConfig, redactedUrl } from '../config/index.js';
import type { StockadeConfig } from '../config/index.js';
import { fileJournalSource, kafkaJournalSource } from '../persistence/journal/index.js';
import type { JournalSource } from '../persistence/journal/index.js';
import { messageOf, parseCommand } from './command.js';
import type { CommandOptions, ParsedFlags } from './command.js';
import { MysqlProjector, openMysqlPool } from '../persistence/stores/index.js';
import type { ProjectorStats } from '../persistence/stores/index.js';

export const PROJECT_USAGE = `usage: stockade project [options]
  Follows the journal and applies its events to MySQL until Ctrl-C (SIGINT/SIGTERM).
  --mysql-url URL        mysql://user:password@host:port/database (default: mysql.url)
  --journal file|kafka   which journal (default: journal.kind)
  --data-dir DIR         file journal directory (default: journal.dir)
  --kafka-brokers LIST   host:port,... (default: kafka.brokers)
  --kafka-topic TOPIC    (default: kafka.topic)
  --progress-ms N        print progress every N ms (default 5000; 0 = never)
  --once                 catch up with the journal, print the totals and exit
  --config FILE          JSON configuration file (STOCKADE_CONFIG)
`;

/** The journal the configuration names, opened read-only for a consumer. */
function journalSourceOf(config: StockadeConfig): () => Promise<JournalSource> {
  const kind = config.journal.kind;
  if (kind === 'kafka') return () => kafkaJournalSource(config.kafka);
  if (kind === 'file') {
    const dir = config.journal.dir;
    return () => Promise.resolve(fileJournalSource(dir, null, { durable: true }));
  }
  throw new RangeError(`the MySQL projection needs a journal (file or kafka), not '${kind}'`);
}

/** The projector as the configuration describes it (`projection.*`, the journal). */
export function projectorFromConfig(
  config: StockadeConfig,
  pool: Pool,
  onError?: (err: Error, retryInMs: number) => void,
): MysqlProjector {
  const p = config.projection;
  return new MysqlProjector({
    pool,
    source: journalSourceOf(config),
    batchEventsMax: p.batchEventsMax,
    flushMs: p.flushMs,
    retryMsMax: p.retryMsMax,
    skuCacheMax: p.skuCacheMax,
    onError,
  });
}

/** One line of progress: totals, rate since the last line, lag per shard. */
function progressLine(st: ProjectorStats, eventsPerS: number | null): string {
  const shards = st.shards.map((s) => `${s.shard}:${s.lag}`).join(' ');
  const rate = eventsPerS === null ? '' : ` (${Math.round(eventsPerS)}/s)`;
  const lagMs = st.lagMs === null ? '?' : `${st.lagMs} ms`;
  return (
    `applied ${st.eventsApplied} events${rate}, skipped ${st.eventsSkipped}, ` +
    `${st.batches} batches, lag ${st.lag} [${shards}] ~${lagMs}, ` +
    `cas misses ${st.casMisses}, conflicts ${st.conflicts}, retries ${st.retries}`
  );
}

interface ProjectArgs {
  config: StockadeConfig;
  progressMs: number;
  once: boolean;
}

const PROJECT_FLAGS = {
  shared: ['mysql-url', 'journal', 'data-dir', 'kafka-brokers', 'kafka-topic', 'config'],
  own: {
    'progress-ms': { type: 'string' },
    once: { type: 'boolean', default: false },
  },
} as const;

type ProjectFlags = ParsedFlags<
  (typeof PROJECT_FLAGS)['own'],
  (typeof PROJECT_FLAGS)['shared'][number]
>;

function projectArgs(flags: ProjectFlags, env: CommandOptions['env']): ProjectArgs {
  const { values: v, configFile, configInput } = flags;
  const config = loadConfig({ env, file: configFile, overrides: configInput });
  if (config.journal.kind === 'none') {
    throw new Error("--journal must be file or kafka (journal.kind is 'none')");
  }
  const raw = v['progress-ms'] ?? '5000';
  if (!/^\d+$/.test(raw)) throw new Error(`--progress-ms must be a whole number, got ${raw}`);
  return { config, progressMs: Number(raw), once: v.once };
}

/**
 * `stockade project`: runs the MySQL projector on its own until `signal` aborts, printing
 * progress to `out`. MySQL or the journal being down is reported and retried, not fatal.
 */
export async function projectCommand(
  argv: string[],
  out: NodeJS.WritableStream,
  options: CommandOptions & { signal?: AbortSignal } = {},
): Promise<number> {
  const err = options.err ?? process.stderr;
  const args = parseCommand(argv, {
    name: 'project',
    usage: PROJECT_USAGE,
    out,
    err,
    ...PROJECT_FLAGS,
    build: (flags) => projectArgs(flags, options.env),
  });
  if (typeof args === 'number') return args;
  const { config } = args;
  let pool: ReturnType<typeof openMysqlPool>;
  try {
    pool = openMysqlPool(config.mysql.url);
  } catch (e) {
    err.write(`stockade project: mysql.url: ${messageOf(e)}\n`);
    return 2;
  }
  const projector = projectorFromConfig(config, pool, (e, retryInMs) => {
    const code = (e as { code?: string }).code;
    // Node's own messages already begin with their code ("ENOENT: no such file…").
    const why = code && !e.message.startsWith(code) ? `${code}: ${e.message}` : e.message;
    err.write(`stockade project: ${why}; retry in ${retryInMs} ms\n`);
  });
  const where = config.journal.kind === 'kafka' ? config.kafka.topic : config.journal.dir;
  const target = redactedUrl(config.mysql.url);
  out.write(`stockade project: ${config.journal.kind} journal ${where} -> ${target}\n`);
  try {
    if (args.once) {
      await projector.catchUp();
    } else {
      projector.start();
      await report(projector, out, args.progressMs, options.signal);
    }
    out.write(`stockade project: ${progressLine(projector.stats(), null)}\n`);
    return 0;
  } catch (e) {
    err.write(`stockade project: ${messageOf(e)}\n`);
    return 1;
  } finally {
    await projector.stop();
    await pool.end().catch(() => {});
  }
}

async function report(
  projector: MysqlProjector,
  out: NodeJS.WritableStream,
  everyMs: number,
  signal?: AbortSignal,
): Promise<void> {
  let last = projector.stats().eventsApplied;
  let lastAt = performance.now();
  for (;;) {
    try {
      await delay(everyMs > 0 ? everyMs : 2 ** 31 - 1, undefined, { signal });
    } catch {
      return; // aborted: stop
    }
    const st = projector.stats();
    const now = performance.now();
    const rate = ((st.eventsApplied - last) * 1000) / Math.max(1, now - lastAt);
    out.write(`stockade project: ${progressLine(st, rate)}\n`);
    last = st.eventsApplied;
    lastAt = now;
  }
}
