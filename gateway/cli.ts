#!/usr/bin/env node
/**
 * The `stockade` command. `stockade serve` starts the engine and the HTTP/WebSocket gateway in
 * front of it; flags map onto configuration overrides, which win over `STOCKADE_*` variables and
 * the `--config` file (config/ validates them all and names the key in any error).
 */
import { tail } from '../persistence/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, createEngine, loadConfig } from '../engine/index.js';
import type { ConfigInput, Engine, StockadeConfig } from '../engine/index.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';
import { startGateway } from './server.js';
import type { Gateway } from './server.js';

const HELP = `Usage: stockade <command> [options]

Commands:
  serve             Start the engine and the HTTP + WebSocket gateway
  tail              Print a journal's events (file or Kafka); 'stockade tail --help'
  help              Show this help

Options for serve (each also settable by its STOCKADE_* variable or a --config file):
  --port N          TCP port (STOCKADE_PORT; default 8080; 0 = any free port)
  --host ADDR       Address to listen on (STOCKADE_HOST; default 127.0.0.1; 0.0.0.0 = all)
  --shards N        Engine shard worker threads (STOCKADE_SHARDS; default: CPU count)
  --threads N       Gateway threads, each a uWS app (STOCKADE_GATEWAY_THREADS; default 1)
  --thread-ports P  shared (every thread on --port; needs SO_REUSEPORT) or consecutive
                    (thread k on port + k, for a load balancer) (STOCKADE_GATEWAY_THREAD_PORTS)
  --journal KIND    Journal backend: file (default), kafka or none (STOCKADE_JOURNAL)
  --data-dir DIR    Directory of the file journal (STOCKADE_DATA_DIR; default ./data)
  --kafka-brokers B Comma-separated Kafka brokers (STOCKADE_KAFKA_BROKERS)
  --kafka-topic T   Kafka journal topic, one partition per shard (STOCKADE_KAFKA_TOPIC)
  --auth MODE       jwt (default) or none (STOCKADE_AUTH). none: anyone may buy as any user and
                    call the admin API; for development and benchmarks only
  --jwt-secret S    HS256 secret, at least 32 bytes (STOCKADE_JWT_SECRET)
  --jwt-public-key K  RS256 public key: PEM text or a PEM file path (STOCKADE_JWT_PUBLIC_KEY)
  --rate-limit N    Purchase attempts per second per user; 0 = off (STOCKADE_RATE_LIMIT_PER_S)
  --log-level L     fatal, error, warn, info, debug, trace or silent (STOCKADE_LOG_LEVEL)
  --config FILE     JSON configuration file (STOCKADE_CONFIG)
  --demo            Define a demo sale: SKU "demo", 1,000,000 units, no per-user limit
  -h, --help        Show this help
  -v, --version     Show the version

Example:
  stockade serve --port 8080 --demo --auth none
  curl -X POST localhost:8080/v1/skus/demo/reservations -H 'content-type: application/json' \\
       -d '{"userId":"u1","qty":1,"idempotencyKey":"k1"}'
`;

const DEMO_SKU = { sku: 'demo', stock: 1_000_000, perUserLimit: 0, name: 'Demo sale' };

class UsageError extends Error {}

function fail(message: string, code: number): never {
  process.stderr.write(`stockade: ${message}\n`);
  process.exit(code);
}

function version(): string {
  // dist/gateway/cli.js and gateway/cli.ts sit at different depths below package.json.
  for (const rel of ['../package.json', '../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url))
      return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

/** A flag value as a number when it looks like one, else as given (config names the error). */
function num(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  return /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
}

interface ServeArgs {
  overrides: ConfigInput;
  file: string | undefined;
  demo: boolean;
}

function parseServe(argv: string[]): ServeArgs | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      shards: { type: 'string' },
      threads: { type: 'string' },
      'thread-ports': { type: 'string' },
      journal: { type: 'string' },
      'data-dir': { type: 'string' },
      'kafka-brokers': { type: 'string' },
      'kafka-topic': { type: 'string' },
      auth: { type: 'string' },
      'jwt-secret': { type: 'string' },
      'jwt-public-key': { type: 'string' },
      'rate-limit': { type: 'string' },
      'log-level': { type: 'string' },
      config: { type: 'string' },
      demo: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const gateway: Record<string, unknown> = {
    port: num(values.port),
    host: values.host,
    threads: num(values.threads),
    threadPorts: values['thread-ports'],
    auth: values.auth,
    jwtSecret: values['jwt-secret'],
    jwtPublicKey: values['jwt-public-key'],
    rateLimitPerS: num(values['rate-limit']),
  };
  const journal: Record<string, unknown> = { kind: values.journal, dir: values['data-dir'] };
  const kafka: Record<string, unknown> = {
    brokers: values['kafka-brokers']?.split(',').map((b) => b.trim()),
    topic: values['kafka-topic'],
  };
  const overrides = {
    engine: { shards: num(values.shards) },
    journal,
    kafka,
    log: { level: values['log-level'] },
    gateway,
  } as ConfigInput;
  return { overrides, file: values.config, demo: values.demo };
}

function warnAuthNone(config: StockadeConfig, log: Logger): void {
  if (config.gateway.auth !== 'none') return;
  const bar = '!'.repeat(78);
  process.stderr.write(
    `${bar}\n!! WARNING: auth is 'none'. Anyone who can reach ` +
      `${config.gateway.host}:${config.gateway.port} can buy as\n` +
      `!! any user and call the admin API (define, restock, close sales). Use it for\n` +
      `!! development and benchmarks only; production needs --auth jwt with a key.\n${bar}\n`,
  );
  log.warn({ auth: 'none' }, 'authentication is off: development and benchmarks only');
}

async function serve(args: ServeArgs): Promise<void> {
  const config = loadConfig({ file: args.file, overrides: args.overrides });
  const log = createLogger(config.log.level);
  warnAuthNone(config, log);
  // The gateway listens at once (healthz answers, readyz says 503) while the engine starts and,
  // with a journal, recovers; the demo sale is defined before readiness.
  const engineReady = createEngine({ config }).then(async (engine) => {
    if (args.demo) {
      const r = await engine.defineSku(DEMO_SKU);
      if (r.status !== 'defined' && r.status !== 'sku_exists')
        throw new Error(`demo sale: ${r.status}`);
    }
    return engine;
  });
  let gateway: Gateway;
  try {
    gateway = await startGateway({ engine: engineReady, config, logger: log });
  } catch (err) {
    await engineReady.then((e) => e.close()).catch(() => {});
    throw err;
  }
  const engine = await engineReady.catch(async (err: unknown) => {
    await gateway.close();
    throw err;
  });
  if (args.demo) gateway.service.trackSku(DEMO_SKU.sku);
  const url = `http://${config.gateway.host}:${gateway.port}`;
  log.info(
    {
      url,
      threads: gateway.threads,
      shards: config.engine.shards,
      auth: config.gateway.auth,
      journal: config.journal.kind,
    },
    'stockade is serving',
  );
  process.stderr.write(`stockade: serving on ${url} (dashboard: ${url}/)\n`);
  if (args.demo) {
    process.stderr.write(
      `stockade: demo sale 'demo' with ${DEMO_SKU.stock.toLocaleString('en-US')} units; try:\n` +
        `  curl -X POST ${url}/v1/skus/demo/reservations -H 'content-type: application/json' ` +
        `-d '{"userId":"u1","qty":1,"idempotencyKey":"k1"}'\n`,
    );
  }
  handleSignals(gateway, engine, log);
}

function handleSignals(gateway: Gateway, engine: Engine, log: Logger): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`stockade: ${signal}: shutting down, finishing in-flight requests\n`);
    log.info({ signal }, 'shutting down: draining in-flight requests');
    gateway
      .close()
      .then(() => engine.close())
      .then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/**
 * `stockade tail`: prints a journal's events, one line each (see persistence/tail.ts, or
 * `stockade tail --help`). Ctrl-C stops a --follow cleanly; a second Ctrl-C exits at once.
 * (The operator tool reads the journal directly, so this one command reaches past the engine
 * into persistence/.)
 */
async function runTail(argv: string[]): Promise<number> {
  const stop = new AbortController();
  const interrupt = (): void => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  // `stockade tail | head`: the reader went away, so stop reading instead of dying on EPIPE.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    stop.abort();
  });
  return tail(argv, process.stdout, { signal: stop.signal });
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP);
    if (command === undefined) process.exitCode = 2;
    return;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (command === 'tail') {
    process.exitCode = await runTail(rest);
    return;
  }
  if (command !== 'serve') throw new UsageError(`unknown command '${command}'`);
  const args = parseServe(rest);
  if (args === 'help') {
    process.stdout.write(HELP);
    return;
  }
  await serve(args);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    fail(`${(err as Error).message}\nRun 'stockade --help' for the options.`, 2);
  }
  if (err instanceof ConfigError) fail(err.message, 2);
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
