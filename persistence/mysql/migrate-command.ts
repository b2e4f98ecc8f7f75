import { parseArgs } from 'node:util';
import { loadConfig, redactedUrl } from '../../config/index.js';
import { MIGRATIONS, migrate } from './migrations.js';
import { openMysqlPool } from './pool.js';

export const MIGRATE_USAGE = `usage: stockade migrate [options]
  --mysql-url URL   mysql://user:password@host:port/database (default: mysql.url)
  --config FILE     JSON configuration file (STOCKADE_CONFIG)
`;

export interface CommandOptions {
  /** Where errors go (default: process.stderr). */
  err?: NodeJS.WritableStream;
  /** Environment for the configuration (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * `stockade migrate`: brings the MySQL schema up to date and prints what it applied. Exit code
 * 0 on success (also when there was nothing to do), 1 when MySQL cannot be reached or a
 * migration fails, 2 for a bad flag.
 */
export async function migrateCommand(
  argv: string[],
  out: NodeJS.WritableStream,
  options: CommandOptions = {},
): Promise<number> {
  const err = options.err ?? process.stderr;
  let url: string;
  try {
    const { values: v } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'mysql-url': { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (v.help) {
      out.write(MIGRATE_USAGE);
      return 0;
    }
    const config = loadConfig({
      env: options.env,
      file: v.config,
      overrides: { mysql: { url: v['mysql-url'] } },
    });
    url = config.mysql.url;
  } catch (e) {
    err.write(`stockade migrate: ${messageOf(e)}\n${MIGRATE_USAGE}`);
    return 2;
  }
  const pool = openMysqlPool(url, { connectionLimit: 1 });
  try {
    const { applied } = await migrate(pool);
    const byVersion = new Map(MIGRATIONS.map((m) => [m.version, m.name]));
    for (const v of applied) out.write(`applied migration ${v}: ${byVersion.get(v)}\n`);
    const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
    const where = redactedUrl(url);
    out.write(
      applied.length === 0
        ? `schema of ${where} is up to date (version ${latest})\n`
        : `schema of ${where} is now at version ${latest}\n`,
    );
    return 0;
  } catch (e) {
    err.write(`stockade migrate: ${describeMysqlError(e, url)}\n`);
    return 1;
  } finally {
    await pool.end().catch(() => {});
  }
}

/** A one-line reason, saying plainly when the server is not reachable at all. */
export function describeMysqlError(e: unknown, url: string): string {
  const code = (e as { code?: unknown }).code;
  const unreachable = ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET'];
  if (typeof code === 'string' && unreachable.includes(code)) {
    return `cannot reach MySQL at ${redactedUrl(url)} (${code}); is the server running?`;
  }
  const prefix = typeof code === 'string' ? `${code}: ` : '';
  return `${prefix}${messageOf(e)} (${redactedUrl(url)})`;
}

function messageOf(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return messageOf(e.errors[0]);
  return e instanceof Error ? e.message : String(e);
}
