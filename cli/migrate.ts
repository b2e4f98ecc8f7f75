import { loadConfig, redactedUrl } from '../config/index.js';
import { messageOf, parseCommand } from './command.js';
import type { CommandOptions } from './command.js';
import { MIGRATIONS, migrate, openMysqlPool } from '../persistence/stores/index.js';

export const MIGRATE_USAGE = `usage: stockade migrate [options]
  --mysql-url URL   mysql://user:password@host:port/database (default: mysql.url)
  --config FILE     JSON configuration file (STOCKADE_CONFIG)
`;

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
  const url = parseCommand(argv, {
    name: 'migrate',
    usage: MIGRATE_USAGE,
    out,
    err,
    shared: ['mysql-url', 'config'],
    own: {},
    build: ({ configFile, configInput }) =>
      loadConfig({ env: options.env, file: configFile, overrides: configInput }).mysql.url,
  });
  if (typeof url === 'number') return url;
  let pool: ReturnType<typeof openMysqlPool> | null = null;
  try {
    pool = openMysqlPool(url, { connectionLimit: 1 });
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
    await pool?.end().catch(() => {});
  }
}

/** A one-line reason, saying plainly when the server is not reachable at all. */
function describeMysqlError(e: unknown, url: string): string {
  const code = (e as { code?: unknown }).code;
  const unreachable = ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET'];
  if (typeof code === 'string' && unreachable.includes(code)) {
    return `cannot reach MySQL at ${redactedUrl(url)} (${code}); is the server running?`;
  }
  if (code === 'ERR_INVALID_URL')
    return 'mysql.url is not a URL (expected mysql://user:pass@host:3306/db)';
  const prefix = typeof code === 'string' ? `${code}: ` : '';
  return `${prefix}${messageOf(e)} (${redactedUrl(url)})`;
}
