import { connect } from 'node:net';
import type { Test } from 'tap';
import { loadConfig } from '../../config/index.js';
import type { KafkaSettings } from '../../config/index.js';

/**
 * The Kafka settings from the configuration (`STOCKADE_KAFKA_*` variables, e.g. from
 * `. .services/env`; other `STOCKADE_*` variables are left out so that services this test does
 * not use cannot break it), with a topic of its own for this run.
 */
export function kafkaTestSettings(
  name: string,
  overrides: Partial<KafkaSettings> = {},
): KafkaSettings {
  const vars = Object.entries(process.env).filter(([k]) => k.startsWith('STOCKADE_KAFKA_'));
  const env = Object.fromEntries(vars);
  const base = loadConfig({ env }).kafka;
  return { ...base, topic: `stockade-test-${name}-${process.pid}-${Date.now()}`, ...overrides };
}

/** True if something accepts TCP connections at the first broker (bounded by 2 s). */
export function brokerReachable(brokers: readonly string[]): Promise<boolean> {
  const [host, port] = splitHostPort(brokers[0] ?? '');
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
}

/**
 * Fails the test when CI=true and the broker is unreachable (CI starts it), else skips loudly.
 * Returns whether the Kafka tests can run.
 */
export async function requireKafka(t: Test, settings: KafkaSettings): Promise<boolean> {
  if (await brokerReachable(settings.brokers)) return true;
  const brokers = settings.brokers.join(',');
  const why = `no Kafka broker at ${brokers}: run \`bash scripts/services.sh up kafka\``;
  if (process.env.CI === 'true') t.fail(`${why} (CI=true: the Kafka tests must run)`);
  else t.skip(`SKIPPED the Kafka journal tests: ${why}`, () => {});
  return false;
}
