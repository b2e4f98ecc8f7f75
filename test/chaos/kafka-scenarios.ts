/**
 * The battery's scenarios on the Kafka journal (registered by kafka-journal.test.ts, which runs
 * the Kafka tests one after the other: pausing the shared broker must not hit another Kafka
 * test; `npm run chaos` runs them long).
 *
 *   brokerPause   the broker SIGSTOPped mid-sale for `pauseMs`, then SIGCONTed (or kill -9'd,
 *                then restarted after `pauseMs` with scripts/services.sh): no purchase
 *                sent while it is away is confirmed before it is back, every request gets an
 *                answer (a retriable 503) within the append timeout plus a margin — no hang —
 *                and the server resumes by itself; then the history is held against the topic
 *                and a replay. The topic keeps the broker's append time on every message
 *                (LogAppendTime), so the checker also sees that no 201 was sent before the
 *                broker had appended its reservation: confirmed means durable, checked from the
 *                outside, not assumed.
 */
import { decodeEvents } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { createEngine, loadConfig } from '../../engine/index.js';
import { KafkaJournal, loadKafkajs } from '../../persistence/journal/index.js';
import { KafkaReader } from '../../persistence/journal/kafka-reader.js';
import { prng } from '../simulation/simulation.js';
import { History, check } from './history.js';
import type { Outcome, SkuState } from './history.js';
import {
  Server,
  defineSkus,
  serviceFault,
  settleUnknowns,
  sleep,
  startBuyers,
  tally,
} from './scenarios.js';
import type { JournalUnderTest, Purchase, Report } from './scenarios.js';

const SHARDS = 2;
const APPEND_TIMEOUT_MS = 2_500;

/** Every valid event of the topic's `shards` partitions, as the journal's own replay reads them. */
export async function topicEvents(s: KafkaSettings, shards = SHARDS): Promise<SkuEvent[]> {
  const j = new KafkaJournal(s, shards);
  try {
    const events: SkuEvent[] = [];
    for (let p = 0; p < shards; p++) await j.read(p, 0, (b) => events.push(...decodeEvents(b)));
    return events;
  } finally {
    await j.close();
  }
}

/** Makes the broker stamp every message of the topic with its own append time. */
async function useLogAppendTime(s: KafkaSettings): Promise<void> {
  const { Kafka, logLevel } = loadKafkajs();
  const admin = new Kafka({ brokers: [...s.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    // AlterConfigs replaces the topic's settings: the journal's own are given again.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2, // TOPIC
          name: s.topic,
          configEntries: [
            { name: 'cleanup.policy', value: 'delete' },
            { name: 'retention.ms', value: '-1' },
            { name: 'retention.bytes', value: '-1' },
            { name: 'max.message.bytes', value: String(s.messageBytesMax) },
            { name: 'message.timestamp.type', value: 'LogAppendTime' },
          ],
        },
      ],
    });
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name: s.topic, configNames: ['message.timestamp.type'] }],
    });
    const type = described.resources[0]?.configEntries[0]?.configValue;
    if (type !== 'LogAppendTime') throw new Error(`${s.topic}: message.timestamp.type is ${type}`);
  } finally {
    await admin.disconnect();
  }
}

/** Each reserved idempotency key's broker append time (valid, unfenced messages only). */
async function appendTimes(s: KafkaSettings): Promise<Map<string, number>> {
  const { Kafka, logLevel } = loadKafkajs();
  const kafka = new Kafka({ brokers: [...s.brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const times = new Map<string, number>();
  try {
    const ends = await admin.fetchTopicOffsets(s.topic);
    const reader = new KafkaReader(kafka, s.topic, s.fetchBytesMax);
    try {
      for (const { partition, high } of ends) {
        for await (const records of reader.fetches(partition, 0, Number(high))) {
          for (const r of records) {
            const at = Number((r as { timestamp?: string }).timestamp);
            for (const e of decodeEvents(r.value!)) {
              if (e.type === 'reserved') times.set(e.idempotencyKey, at);
            }
          }
        }
      }
    } finally {
      await reader.close();
    }
  } finally {
    await admin.disconnect();
  }
  return times;
}

async function replayTopic(s: KafkaSettings, skus: string[], shards = SHARDS) {
  const engine = await createEngine({
    config: loadConfig({
      env: {},
      overrides: {
        engine: { shards },
        journal: { kind: 'kafka' },
        kafka: { brokers: [...s.brokers], topic: s.topic },
      },
    }),
    onWarning: () => {},
  });
  try {
    const snaps = await engine.getSkus(skus);
    return new Map<string, SkuState | null>(skus.map((sku, i) => [sku, snaps[i]]));
  } finally {
    await engine.close();
  }
}

/** A Kafka topic as the journal of the scenarios (`killNine` takes it too). */
export function kafkaJournal(s: KafkaSettings, shards = SHARDS): JournalUnderTest {
  return {
    name: 'Kafka journal',
    args: ['--journal', 'kafka', '--kafka-brokers', s.brokers.join(','), '--kafka-topic', s.topic],
    env: { STOCKADE_KAFKA_APPEND_TIMEOUT_MS: String(APPEND_TIMEOUT_MS) },
    events: () => topicEvents(s, shards),
    replay: (skus) => replayTopic(s, skus, shards),
  };
}

export interface BrokerPauseOptions {
  seed: number;
  settings: KafkaSettings;
  /** SIGSTOP then SIGCONT after `pauseMs`, or kill -9 then a restart after `pauseMs`. */
  fault: 'pause' | 'kill';
  pauseMs: number;
  lanes: number;
  progress?: (line: string) => void;
}

export async function brokerPause(o: BrokerPauseOptions): Promise<Report> {
  const rand = prng(o.seed);
  const s = o.settings;
  const journal = kafkaJournal(s);
  const server = new Server(journal.args, journal.env);
  const h = new History();
  const skus = ['k-0', 'k-1', 'k-2'];
  const stock = 1_000_000;
  const fault = serviceFault('kafka', o.fault);
  let buyers: { stop(): Promise<void> } | null = null;
  try {
    await server.start();
    await useLogAppendTime(s);
    await defineSkus(server, skus, stock);
    let pausedAt = Infinity;
    let resumedAt = Infinity;
    /** When the broker answers again (a killed one: once its restart is ready). */
    let backAt = Infinity;
    let slowest = 0;
    let firstOkAfterResume = 0;
    const okDuringPause: string[] = [];
    const answeredAt = new Map<string, number>();
    const seen = (p: Purchase, outcome: Outcome, sent: number, answered: number) => {
      if (sent >= pausedAt && sent < backAt) slowest = Math.max(slowest, answered - sent);
      // Sent after the broker stopped, it cannot be durable before the broker is back. (A 201
      // for an earlier request may still arrive during the pause: its append was acknowledged
      // before, and the append-time check below holds it to that.)
      if (outcome === 'ok' && sent >= pausedAt && answered < resumedAt) {
        okDuringPause.push(`${p.key} sent ${sent - pausedAt} ms into the pause`);
      }
      if (outcome === 'ok' && !answeredAt.has(p.key)) answeredAt.set(p.key, answered);
      if (outcome === 'ok' && sent > resumedAt && firstOkAfterResume === 0) {
        firstOkAfterResume = answered - resumedAt;
      }
    };
    buyers = startBuyers({ h, server, rand, skus, lanes: o.lanes, prefix: 'b', seen });
    await sleep(1_000);
    const okBefore = h.count('ok');
    fault.inject();
    pausedAt = Date.now();
    o.progress?.(
      `brokerPause: broker ${o.fault === 'pause' ? 'stopped' : 'killed'} for ${o.pauseMs} ms after ${okBefore} purchases`,
    );
    await sleep(o.pauseMs);
    // From here the broker may append again (a killed one once its restart is under way).
    resumedAt = Date.now();
    await fault.cure();
    backAt = Date.now();
    const backAfterMs = backAt - resumedAt;
    const codesWhilePaused = new Set(
      h.ops
        .filter((x) => x.at > pausedAt + 250 && x.at < backAt && x.outcome !== 'ok')
        .map((x) => x.detail),
    );
    const deadline = Date.now() + 120_000;
    while (firstOkAfterResume === 0) {
      if (Date.now() > deadline)
        throw new Error('no purchase confirmed 120 s after the broker came back');
      await sleep(50);
    }
    await sleep(1_000);
    await buyers.stop();
    const resolved = await settleUnknowns(h, server, 120_000);
    const code = await server.stop();
    const verdict = check(
      h,
      await journal.events(),
      await journal.replay(skus),
      new Map(skus.map((sku) => [sku, stock])),
    );
    const hangBound = APPEND_TIMEOUT_MS + 5_000;
    // Confirmed means durable: no 201 left before the broker had appended its reservation (one
    // clock, this machine's; 1 ms of rounding).
    const appended = await appendTimes(s);
    const early = [...answeredAt].filter(([key, at]) => (appended.get(key) ?? Infinity) > at + 1);
    const violations = [
      ...verdict.violations,
      ...okDuringPause.map((x) => `confirmed while the broker was stopped: ${x}`),
      ...early
        .slice(0, 10)
        .map(([k, at]) => `${k}: 201 at ${at}, appended at ${appended.get(k) ?? 'never'}`),
      ...(slowest < hangBound ? [] : [`a request sent during the pause waited ${slowest} ms`]),
      ...(code === 0 ? [] : [`serve exited ${code} on SIGTERM`]),
    ];
    return {
      scenario:
        o.fault === 'pause'
          ? `Kafka broker stopped (SIGSTOP) for ${o.pauseMs / 1000} s mid-sale, then resumed`
          : `Kafka broker killed (kill -9) mid-sale, restarted after ${o.pauseMs / 1000} s`,
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: resolved,
      ...verdict,
      violations,
      extra: {
        okBeforePause: okBefore,
        codesWhilePaused: [...codesWhilePaused].sort(),
        slowestAnswerDuringPauseMs: slowest,
        firstConfirmationAfterResumeMs: firstOkAfterResume,
        ...(o.fault === 'kill' ? { brokerRestartToReadyMs: backAfterMs } : {}),
        confirmationsCheckedAgainstAppendTime: answeredAt.size,
      },
    };
  } finally {
    const curing = fault.cure(); // leave the broker as it was found, even on failure
    await buyers?.stop();
    await server.end();
    await curing;
  }
}
