/**
 * The one rule every integration test follows when its real service is missing: under CI=true
 * (where .ci/run starts every service) the test fails; elsewhere it is skipped, loudly, with the
 * command that starts the service.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import type { Test } from 'tap';

/** True if something accepts TCP connections at host:port (bounded by `timeoutMs`). */
export function tcpReachable(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether the tests of `name` can run: true when `problem` is null; otherwise fails the test
 * under CI=true, or skips it loudly, saying what is wrong and how to fix it.
 */
export function requireService(
  t: Test,
  name: string,
  problem: string | null,
  fix: string,
): boolean {
  if (problem === null) return true;
  const why = `${problem}: ${fix}`;
  if (process.env.CI === 'true') t.fail(`${why} (CI=true: the ${name} tests must run)`);
  else t.skip(`SKIPPED the ${name} tests: ${why}`, () => {});
  return false;
}

/**
 * The `STOCKADE_*` variables of this environment whose names start with one of `prefixes`
 * (e.g. `STOCKADE_MYSQL_`): the settings of the services a test uses, and none that could
 * change what it asked for.
 */
export function serviceEnv(...prefixes: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && prefixes.some((p) => k.startsWith(p))) env[k] = v;
  }
  return env;
}

/** This environment without any `STOCKADE_*` variable (for a child `stockade` process). */
export function envWithoutStockade(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('STOCKADE_')) env[k] = v;
  return env;
}

/**
 * Stops or starts a real service with the project's script (scripts/services.sh), which starts
 * only what is not running and stops only the PIDs it recorded: the outage tests' fault and cure.
 */
export function services(
  command: 'up' | 'down',
  name: ServiceName | ServiceName[],
  /** SERVICES_DIR and the SERVICES_*_PORT variables of a private set of instances. */
  env: Record<string, string> = {},
): Promise<void> {
  const script = new URL('../../scripts/services.sh', import.meta.url).pathname;
  const names = Array.isArray(name) ? name : [name];
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [script, command, ...names],
      { timeout: 150_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        err
          ? reject(
              new Error(
                `services.sh ${command} ${names.join(' ')}: ${err.message}\n${stdout}${stderr}`,
              ),
            )
          : resolve(),
    );
  });
}

export type ServiceName = 'mariadb' | 'redis' | 'kafka' | 'ferretdb';
