#!/usr/bin/env node
/**
 * The `stockade` command. `stockade serve` starts the engine and the HTTP/WebSocket gateway in
 * front of it; flags map onto configuration overrides, which win over `STOCKADE_*` variables and
 * the `--config` file (config/ validates them all and names the key in any error).
 */
import { MongoAuditLog, SHARED_LIMITER_MODULE } from '../persistence/stores/index.js';
import { crowdCommand, migrateCommand, projectCommand, tail } from './index.js';
import { existsSync, readFileSync } from 'node:fs';
import {
  ConfigError,
  MissingPackageError,
  createEngine,
  isErrorCode,
  loadConfig,
} from '../engine/index.js';
import { numberOrRaw as num, parseFlags } from './command.js';
import { servedConfig } from './shard-threads.js';
import { requirePackages } from '../config/index.js';
import type { OptionalPackage } from '../config/index.js';
import type { ConfigInput, Engine, StockadeConfig } from '../engine/index.js';
import { createLogger, createVerifier, startGateway } from '../gateway/index.js';
import type { Gateway, Logger } from '../gateway/index.js';
import { openCatalog } from './open-catalog.js';
import type { OpenCatalog } from './open-catalog.js';
import { openProjection } from './serve-projection.js';

const HELP = `Usage: stockade <command> [options]

Commands:
  serve             Start the engine and the HTTP + WebSocket gateway
  tail              Print a journal's events (file or Kafka); 'stockade tail --help'
  migrate           Create or update the MySQL schema; 'stockade migrate --help'
  project           Apply the journal to MySQL, following it; 'stockade project --help'
  crowd             Send a bounded crowd of buyers at a sale; 'stockade crowd --help'
  help              Show this help
  --version, -v     Show the version

Options for serve (each also settable by its STOCKADE_* variable or a --config file):
  --port N          TCP port (STOCKADE_PORT; default 8080; 0 = any free port)
  --host ADDR       Address to listen on (STOCKADE_HOST; default 127.0.0.1; 0.0.0.0 = all)
  --shards N        Engine shards (STOCKADE_SHARDS; default: CPU count)
  --shard-threads M workers (a worker thread per shard), inline (the shards run on the main
                    thread, next to the gateway) or auto (default: inline with one gateway
                    thread on at most 2 CPUs, else workers) (STOCKADE_SHARD_THREADS)
  --threads N       Gateway threads, each a uWS app (STOCKADE_GATEWAY_THREADS; default 1)
  --thread-ports P  shared (every thread on --port; needs SO_REUSEPORT) or consecutive
                    (thread k on port + k, for a load balancer) (STOCKADE_GATEWAY_THREAD_PORTS)
  --journal KIND    Journal backend: file (default), kafka or none (STOCKADE_JOURNAL)
  --data-dir DIR    Directory of the file journal (STOCKADE_DATA_DIR; default ./data)
  --kafka-brokers B Comma-separated Kafka brokers (STOCKADE_KAFKA_BROKERS)
  --kafka-topic T   Kafka journal topic, one partition per shard (STOCKADE_KAFKA_TOPIC).
                    On the Kafka journal every serve of the topic is a member of one cluster:
                    each partition served by one member, the others forward to it
  --node-id ID      This member's name (STOCKADE_NODE_ID; default <hostname>-<pid>)
  --advertise URL   How the other members reach this one, http://host:port (STOCKADE_ADVERTISE;
                    default: its own listener on 127.0.0.1, for members on one machine)
  --cluster-listen H:P  Where it listens for the other members (STOCKADE_CLUSTER_LISTEN; default
                    127.0.0.1:0, or the advertised port on all interfaces). Beyond loopback,
                    STOCKADE_CLUSTER_SECRET must be set, the same on every member
  --auth MODE       jwt (default) or none (STOCKADE_AUTH). none: anyone may buy as any user and
                    call the admin API; for development and benchmarks only
  --jwt-secret S    HS256 secret, at least 32 bytes (STOCKADE_JWT_SECRET)
  --jwt-public-key K  RS256 public key: PEM text or a PEM file path (STOCKADE_JWT_PUBLIC_KEY)
  --rate-limit N    Purchase attempts per second per user; 0 = off (STOCKADE_RATE_LIMIT_PER_S)
  --rate-limit-store S  memory (default; per gateway thread) or redis (one bucket per user
                    shared by every node, at STOCKADE_REDIS_URL) (STOCKADE_RATE_LIMIT_STORE)
  --audit           Write every purchase decision to the MongoDB audit log at STOCKADE_MONGO_URL
                    (STOCKADE_AUDIT=true)
  --log-level L     fatal, error, warn, info, debug, trace or silent (STOCKADE_LOG_LEVEL)
  --config FILE     JSON configuration file (STOCKADE_CONFIG)
  --demo            Define a demo sale: SKU "demo", 5,000 units, at most 2 per buyer
  --project         Run the MySQL projector in this process, following the journal into
                    STOCKADE_MYSQL_URL (STOCKADE_PROJECTION_MYSQL=true)
  --products        Serve the product API: records in MySQL (STOCKADE_MYSQL_URL), cached in
                    Redis (STOCKADE_REDIS_URL); sales then need moderated images
                    (STOCKADE_PRODUCTS)
  --moderation      Run image moderation for POST /v1/moderation/images and product images;
                    the model is moderation.modelDir (STOCKADE_PRODUCTS_MODERATION)
  -h, --help        Show this help

Example:
  stockade serve --port 8080 --demo --auth none
  curl -X POST localhost:8080/v1/skus/demo/reservations -H 'content-type: application/json' \\
       -d '{"userId":"u1","qty":1,"idempotencyKey":"k1"}'
`;

/** A sale a person can watch sell out: `npm start`, then `npm run crowd`. */
const DEMO_SKU = { sku: 'demo', stock: 5_000, perUserLimit: 2, name: 'Demo sale' };

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

interface ServeArgs {
  overrides: ConfigInput;
  file: string | undefined;
  demo: boolean;
}

/**
 * serve's flags: the shared ones (command.ts) and its own. Positionals parse, so that serve
 * can refuse one in its own words rather than in `parseArgs`'s.
 */
const SERVE_FLAGS = {
  shared: ['shards', 'journal', 'data-dir', 'kafka-brokers', 'kafka-topic', 'config'],
  own: {
    port: { type: 'string' },
    host: { type: 'string' },
    'shard-threads': { type: 'string' },
    threads: { type: 'string' },
    'thread-ports': { type: 'string' },
    auth: { type: 'string' },
    'jwt-secret': { type: 'string' },
    'jwt-public-key': { type: 'string' },
    'rate-limit': { type: 'string' },
    'rate-limit-store': { type: 'string' },
    audit: { type: 'boolean', default: false },
    project: { type: 'boolean', default: false },
    'log-level': { type: 'string' },
    demo: { type: 'boolean', default: false },
    products: { type: 'boolean' },
    moderation: { type: 'boolean' },
    'node-id': { type: 'string' },
    advertise: { type: 'string' },
    'cluster-listen': { type: 'string' },
  },
  positionals: true,
} as const;

function parseServe(argv: string[]): ServeArgs | 'help' {
  const flags = parseFlags(argv, SERVE_FLAGS);
  if (flags === null) return 'help';
  const { values, positionals } = flags;
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
    rateLimitStore: values['rate-limit-store'],
  };
  // Absent flags stay undefined, so STOCKADE_PRODUCTS and the config file still apply.
  const products: Record<string, unknown> = {
    enabled: values.products,
    moderation: values.moderation,
  };
  // The shared flags' sections (engine.shards, journal, kafka), in the order they always had.
  const { engine, journal, kafka } = flags.configInput;
  const overrides = {
    products,
    engine: { ...engine, shardThreads: values['shard-threads'] },
    journal,
    kafka,
    log: { level: values['log-level'] },
    // Only when given: the flag turns the audit log on, its absence leaves the config's choice.
    audit: values.audit ? { enabled: true } : {},
    projection: values.project ? { mysql: true } : {},
    gateway,
    cluster: {
      nodeId: values['node-id'],
      advertise: values.advertise,
      listen: values['cluster-listen'],
    },
  } as ConfigInput;
  return { overrides, file: flags.configFile, demo: values.demo };
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

/** The optional packages what `config` turns on needs, each with the feature that needs it. */
function packagesFor(config: StockadeConfig): [OptionalPackage[], string][] {
  const needs: [OptionalPackage[], string][] = [
    [['@trufflesuite/uws-js-unofficial'], 'The HTTP and WebSocket server (stockade serve)'],
  ];
  if (config.journal.kind === 'kafka') needs.push([['kafkajs'], 'The Kafka journal']);
  if (config.projection.mysql) needs.push([['mysql2'], 'The MySQL projection (--project)']);
  if (config.products.enabled) needs.push([['mysql2', 'ioredis'], 'Products (--products)']);
  if (config.products.moderation) {
    needs.push([['onnxruntime-node', 'sharp', 'piscina'], 'Image moderation (--moderation)']);
  }
  if (config.audit.enabled) needs.push([['mongodb'], 'The audit log (--audit)']);
  if (config.gateway.rateLimitStore === 'redis') {
    needs.push([['ioredis'], 'Shared rate limits (--rate-limit-store redis)']);
  }
  return needs;
}

async function serve(args: ServeArgs): Promise<void> {
  const config = servedConfig(loadConfig({ file: args.file, overrides: args.overrides }));
  const log = createLogger(config.log.level);
  // A bad auth setup, or a configured feature whose optional package is missing, stops the
  // start before anything opens (or creates the data directory).
  for (const [packages, feature] of packagesFor(config)) requirePackages(packages, feature);
  createVerifier(config.gateway);
  warnAuthNone(config, log);
  // Signals are handled from the start: a SIGTERM while the engine still recovers its journal
  // (the gateway already listening, readyz 503) stops what has opened, as one later does.
  const open = handleSignals(log);
  // The gateway listens at once (healthz answers, readyz says 503) while the engine starts and,
  // with a journal, recovers; the demo sale is defined before readiness.
  const onWarning = (warning: string) => log.warn(warning);
  const engineReady = createEngine({ config, onWarning }).then(async (engine) => {
    open.engine = engine;
    if (args.demo) {
      const r = await engine.defineSku(DEMO_SKU);
      if (r.status !== 'defined' && r.status !== 'sku_exists')
        throw new Error(`demo sale: ${r.status}`);
    }
    return engine;
  });
  // Products and moderation (MySQL, Redis, the model) open before the gateway listens, so a
  // missing database or model stops the start with its reason.
  const audit = openAudit(config, log);
  if (audit) open.last.push(() => closeAudit(audit, log));
  let catalog: OpenCatalog;
  try {
    catalog = await openCatalog(config, log, audit ?? undefined);
    open.last.unshift(() => catalog.close());
  } catch (err) {
    if (open.stopping) return leftToTheSignal();
    await engineReady.then((e) => e.close()).catch(() => {});
    await audit?.close();
    throw err;
  }
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      engine: engineReady,
      config,
      logger: log,
      catalog: catalog.catalog,
      audit: audit ?? undefined,
      sharedLimiterModule: SHARED_LIMITER_MODULE,
    });
    open.gateway = gateway;
    log.info({ port: gateway.port }, 'gateway listening; the engine is starting');
  } catch (err) {
    if (open.stopping) return leftToTheSignal();
    await engineReady.then((e) => e.close()).catch(() => {});
    await catalog.close();
    await audit?.close();
    throw err;
  }
  await engineReady.catch(async (err: unknown) => {
    if (open.stopping) return leftToTheSignal();
    await gateway.close();
    await catalog.close();
    await closeAudit(audit, log);
    throw err;
  });
  // A signal during the start is shutting down what opened: open nothing more.
  if (open.stopping) return;
  if (args.demo) gateway.service.trackSku(DEMO_SKU.sku);
  announce(config, gateway, args.demo, log);
  // The projector reads the journal beside the engine; it stops after the engine closed.
  const projection = openProjection(config, log);
  if (projection) {
    gateway.service.projectionStats = () => projection.stats();
    open.last.push(() => projection.close());
  }
}

/** Says where the server listens (and how to try the demo sale), in the log and on stderr. */
function announce(config: StockadeConfig, gateway: Gateway, demo: boolean, log: Logger): void {
  const url = `http://${config.gateway.host}:${gateway.port}`;
  log.info(
    {
      url,
      threads: gateway.threads,
      shards: config.engine.shards,
      shardThreads: config.engine.shardThreads,
      auth: config.gateway.auth,
      journal: config.journal.kind,
      products: config.products.enabled,
      moderation: config.products.moderation,
    },
    'stockade is serving',
  );
  process.stderr.write(`stockade: serving on ${url} (dashboard: ${url}/)\n`);
  if (demo) {
    process.stderr.write(
      `stockade: demo sale 'demo' with ${DEMO_SKU.stock.toLocaleString('en-US')} units; try:\n` +
        `  curl -X POST ${url}/v1/skus/demo/reservations -H 'content-type: application/json' ` +
        `-d '{"userId":"u1","qty":1,"idempotencyKey":"k1"}'\n`,
    );
  }
}

/**
 * The MongoDB audit log, when `audit.enabled`. It never holds up the start: MongoDB being down
 * is logged, entries wait in the bounded buffer and the writes are retried with backoff.
 */
function openAudit(config: StockadeConfig, log: Logger): MongoAuditLog | null {
  if (!config.audit.enabled) return null;
  const a = config.audit;
  const audit = new MongoAuditLog({
    url: config.mongo.url,
    collection: a.collection,
    bufferMax: a.bufferMax,
    batchMax: a.batchMax,
    flushMs: a.flushMs,
    ttlDays: a.ttlDays,
    onError: (err) => log.warn({ err }, 'audit log: write failed; retrying with backoff'),
  });
  audit.ensureIndexes().then(
    (ttl) => log.info({ collection: a.collection, ttl }, 'audit log: writing to MongoDB'),
    (err: unknown) => log.warn({ err }, 'audit log: MongoDB not reachable yet; buffering'),
  );
  return audit;
}

async function closeAudit(audit: MongoAuditLog | null, log: Logger): Promise<void> {
  if (audit === null) return;
  await audit.close();
  log.info({ ...audit.stats }, 'audit log closed');
}

/** What `serve` has opened so far, closed in this order on a signal. */
interface Opened {
  gateway?: Gateway;
  engine?: Engine;
  /**
   * After the engine: the catalog, the audit log (which flushes last of the stores), the projector.
   */
  last: (() => Promise<unknown>)[];
  /** A signal has begun the shutdown: a start that fails now leaves the closing to it. */
  stopping: boolean;
}

/** A start that failed while a signal shuts down: the shutdown closes what opened and exits. */
function leftToTheSignal(): Promise<never> {
  return new Promise<never>(() => {});
}

/**
 * SIGINT/SIGTERM: stop taking requests, answer those in flight, flush the journal, exit 0. A
 * signal during the start closes whatever has opened; an engine still recovering its journal
 * has confirmed nothing yet, so the process exits without waiting for it.
 */
function handleSignals(log: Logger): Opened {
  const open: Opened = { last: [], stopping: false };
  const stop = (signal: string): void => {
    if (open.stopping) {
      log.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    open.stopping = true;
    process.stderr.write(`stockade: ${signal}: shutting down, finishing in-flight requests\n`);
    log.info(
      { signal, engineStarted: open.engine !== undefined },
      'shutting down: draining in-flight requests',
    );
    // Every step runs even if one before it failed: the audit log's flush and the projector's
    // stop must not be skipped because the gateway or the engine closed badly. Each step looks
    // at what is open when its turn comes (an engine may finish starting meanwhile).
    void (async () => {
      let failed = false;
      function* steps(): Generator<() => Promise<unknown> | undefined> {
        yield () => open.gateway?.close();
        yield () => open.engine?.close();
        yield* open.last;
      }
      for (const step of steps()) {
        try {
          await step();
        } catch (err) {
          failed = true;
          log.error({ err }, 'shutdown step failed');
        }
      }
      if (!failed) log.info('stopped');
      process.exit(failed ? 1 : 0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return open;
}

/**
 * `stockade tail`: prints a journal's events, one line each (see persistence/tail.ts, or
 * `stockade tail --help`). Ctrl-C stops a --follow cleanly; a second Ctrl-C exits at once.
 * (The operator commands, tail, migrate and project, work on the journal and the stores
 * directly, so they reach past the engine into persistence/.)
 */
async function runTail(argv: string[]): Promise<number> {
  const signal = abortOnSignal();
  // `stockade tail | head`: the reader went away, so stop reading instead of dying on EPIPE.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    signal.abort();
  });
  return tail(argv, process.stdout, { signal: signal.signal });
}

/** `stockade project`: the projector on its own until SIGINT/SIGTERM. */
function runProject(argv: string[]): Promise<number> {
  return projectCommand(argv, process.stdout, { signal: abortOnSignal().signal });
}

/**
 * For the long-running operator commands: the first SIGINT/SIGTERM aborts the returned
 * controller (the command stops cleanly between batches), a second one exits at once.
 */
function abortOnSignal(): AbortController {
  const stop = new AbortController();
  const interrupt = (): void => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  return stop;
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
  if (command === 'project') {
    process.exitCode = await runProject(rest);
    return;
  }
  if (command === 'crowd') {
    process.exitCode = await crowdCommand(rest, process.stdout);
    return;
  }
  if (command === 'migrate') {
    process.exitCode = await migrateCommand(rest, process.stdout);
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
  // A configured feature whose optional package is missing: how to install it.
  if (err instanceof MissingPackageError) fail(`${err.code}: ${err.message}`, 2);
  // A fault from the catalogue (journal_locked, journal_corrupt, ...) is said with its code; its
  // message says what to do. Anything else is unexpected: the stack helps more.
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && isErrorCode(code))
    fail(`${code}: ${err.message}`, 1);
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
