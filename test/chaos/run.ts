/**
 * `npm run chaos`: the reliability battery, long, one scenario after the other, and its report
 * written to docs/reliability.md (the figures of this run, on this machine). Flags:
 *   --kills N      kill -9s of serve (default 100)
 *   --cases N      hostile requests (default 100000)
 *   --seed N       the seed of every scenario (default: from the clock; printed)
 *   --out FILE     where the report goes (default docs/reliability.md)
 * Exits 1 if any scenario found a violation (the report says which).
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../config/index.js';
import { deleteTopics } from '../../bench/kafka-journal.js';
import { brokerReachable } from '../persistence/kafka-helpers.js';
import { serviceEnv, tcpReachable } from '../persistence/service-helpers.js';
import { mysqlProblem, mysqlTestUrl } from '../persistence/mysql-helpers.js';
import { storeFault } from './store-scenarios.js';
import { clusterFault } from './cluster-scenario.js';
import { mongoUrl, redisUrl } from '../persistence/store-helpers.js';
import { brokerPause, kafkaJournal } from './kafka-scenarios.js';
import { fullDisk, hostile, hostileWs, killNine } from './scenarios.js';
import { slowClients } from './slow-clients.js';
import type { Report } from './scenarios.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '100' },
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    out: { type: 'string', default: 'docs/reliability.md' },
  },
});
const seed = Number(values.seed ?? Date.now() % 100_000);
const progress = (line: string) => process.stdout.write(`  ${line}\n`);
process.stdout.write(`chaos: seed ${seed}\n`);

const reports: Report[] = [];
/** Scenarios this run could not do, and why: the report lists them. */
const skipped: string[] = [];
const skip = (why: string) => {
  skipped.push(why);
  process.stdout.write(`skipped: ${why}\n`);
};
const started = Date.now();
process.stdout.write('kill -9 of serve ...\n');
reports.push(
  await killNine({
    seed,
    kills: Number(values.kills),
    lanes: 8,
    skus: 4,
    stock: 40_000, // about what 100 short lives sell here: the sale goes on through the kills
    minLifeMs: 200,
    maxLifeMs: 2_000,
    holdTtlMs: 5_000, // nobody confirms: holds expire across the kills, each exactly once
    progress,
  }),
);
if (process.getuid?.() === 0) {
  process.stdout.write('disk full ...\n');
  reports.push(await fullDisk({ seed, lanes: 8, progress }));
} else {
  skip('disk full: needs root to mount a tmpfs');
}
const kafka = loadConfig({ env: serviceEnv('STOCKADE_KAFKA_') }).kafka;
if (await brokerReachable(kafka.brokers)) {
  process.stdout.write('kill -9 of serve on the Kafka journal ...\n');
  reports.push(
    await killNine({
      seed,
      journal: kafkaJournal({ ...kafka, topic: `stockade-chaos-${Date.now()}-kill9` }),
      kills: Number(values.kills), // each restart waits out the session timeout: ~9 s a kill
      lanes: 8,
      skus: 4,
      stock: 40_000,
      minLifeMs: 1_000,
      maxLifeMs: 4_000,
      holdTtlMs: 5_000,
      progress,
    }),
  );
  for (const fault of ['pause', 'kill'] as const) {
    for (const pauseMs of [5_000, 60_000]) {
      process.stdout.write(
        `Kafka broker ${fault === 'pause' ? 'stopped' : 'killed'} for ${pauseMs / 1000} s ...\n`,
      );
      const topic = `stockade-chaos-${Date.now()}-${fault}${pauseMs / 1000}`;
      reports.push(
        await brokerPause({
          ...{ seed, settings: { ...kafka, topic }, fault, pauseMs, lanes: 8, progress },
        }),
      );
    }
  }
  process.stdout.write('a cluster member killed, another stopped ...\n');
  reports.push(
    await clusterFault({
      ...{ seed, settings: { ...kafka, topic: `stockade-chaos-${Date.now()}-cluster` } },
      ...{ lanes: 8, stopMs: 12_000, progress },
    }),
  );
  await deleteTopics(kafka, 'stockade-chaos-');
} else {
  skip(
    `Kafka (kill -9 of serve, broker paused and killed): no broker at ${kafka.brokers.join(',')}`,
  );
}
const stores = { mysqlUrl: mysqlTestUrl(), redisUrl: redisUrl(), mongoUrl: mongoUrl() };
const storesDown =
  (await mysqlProblem(stores.mysqlUrl)) ??
  ((await tcpReachable('127.0.0.1', Number(new URL(stores.redisUrl).port || 6379)))
    ? null
    : `no Redis at ${stores.redisUrl}`) ??
  ((await tcpReachable('127.0.0.1', Number(new URL(stores.mongoUrl).port || 27017)))
    ? null
    : `no MongoDB-compatible server at ${stores.mongoUrl}`);
if (storesDown === null) {
  for (const store of ['mariadb', 'redis', 'ferretdb'] as const) {
    for (const fault of ['pause', 'kill'] as const) {
      process.stdout.write(`${store} ${fault === 'pause' ? 'stopped' : 'killed'} for 10 s ...\n`);
      reports.push(
        await storeFault({ seed, store, fault, faultMs: 10_000, ...stores, lanes: 8, progress }),
      );
    }
  }
} else {
  skip(`MariaDB, Redis and FerretDB stopped and killed: ${storesDown}`);
}
process.stdout.write('hostile input ...\n');
reports.push(await hostile({ seed, cases: Number(values.cases), progress }));
process.stdout.write('hostile WebSocket input ...\n');
// One message at a time, each waiting up to 1 s for its answer: a twentieth of the HTTP cases.
reports.push(await hostileWs({ seed, cases: Math.ceil(Number(values.cases) / 20), progress }));

process.stdout.write('slow and never-reading clients ...\n');
reports.push(
  await slowClients({
    seed,
    slowloris: 4_000,
    neverReading: 400,
    wsNeverReading: 4,
    wsMessagesPerS: 3_000,
    phaseMs: 30_000,
    lanes: 4,
    latencyBound: true,
    progress,
  }),
);

const failed = reports.filter((r) => r.violations.length > 0);
const row = (r: Report) =>
  `| ${r.scenario} | ${r.attempts} | ${r.ok} | ${r.acknowledged} | ${r.refused} | ${r.unknown} | ` +
  `${r.resolvedByRetry} | ` +
  `${r.lost} | ${r.oversold} | ${r.duplicated} | ${r.violations.length} |`;
const text = `# Reliability

What the battery (\`npm run chaos\`, source in \`test/chaos/\`) measured in its last long run:
every scenario drives real \`stockade serve\` processes over HTTP, records each purchase as the
buyer saw it (ok: 201; refused: a 4xx; unknown: a 5xx, a reset or a timeout — it may or may not
have happened), retries every unknown with the same idempotency key until a definite answer
settles it, and then holds the history against a fresh replay of the journal: every 201 present
exactly once under the id its buyer was given, no key reserved twice, duplicates answered
identically, a key reused with another body refused, nothing sold past its stock. \`npm test\`
runs the same scenarios small on every change. Columns: attempts are requests sent (each copy of
a duplicate counts); ok, refused and unknown are their answers; keys confirmed are distinct
purchases with a 201; settled by retry are keys that had only unknown answers until the final
retries; lost, oversold and duplicated must be 0.

Run of ${new Date().toISOString().slice(0, 10)}: seed ${seed} (\`npm run chaos -- --seed ${seed}\`
replays the same choices; the timing of kills is the machine's), ${cpus().length} CPUs
(${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version},
${Math.round((Date.now() - started) / 1000)} s in all.

| scenario | attempts | ok | keys confirmed | refused | unknown | settled by retry | lost | oversold | duplicated | violations |
|---|---|---|---|---|---|---|---|---|---|---|
${reports.map(row).join('\n')}

${reports
  .map(
    (r) =>
      `**${r.scenario}**: refusals and statuses ${JSON.stringify(r.refusals)}; ` +
      `${JSON.stringify(r.extra)}` +
      (r.violations.length > 0
        ? `\n\nViolations:\n${r.violations.map((v) => `- ${v}`).join('\n')}`
        : ''),
  )
  .join('\n\n')}

${skipped.length > 0 ? `**Skipped in this run:** ${skipped.join('; ')}.\n\n` : ''}uWS.js closes the connection, without an answer, on a request line it cannot parse (an unknown
method such as \`BREW\`, \`HTTP/9.9\`) and on conflicting \`Content-Length\`/\`Transfer-Encoding\`:
those count as "closed" above, never as a 5xx (the server's RSS before and after is above).

The store scenarios run on the checkout's services here; \`npm test\` runs them small on a private
set (test/chaos/stores.test.ts). Slow clients are held by the gateway's limits ([docs/http-api.md](http-api.md#limits-slow-and-hostile-clients)); the honest buyers' p99 bound is held only in this run, which has the
machine to itself.
`;
writeFileSync(values.out, text);
process.stdout.write(`\n${text}\nwrote ${values.out}\n`);
process.exit(failed.length > 0 ? 1 : 0);
