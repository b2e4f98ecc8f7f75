import type { Test } from 'tap';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { loadConfig } from '../../config/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { requireService, serviceEnv, services, tcpReachable } from './service-helpers.js';

/**
 * The Kafka settings from the configuration (`STOCKADE_KAFKA_*` variables, e.g. from
 * `. .services/env`; other `STOCKADE_*` variables are left out so that services this test does
 * not use cannot break it), with a topic of its own for this run.
 */
export function kafkaTestSettings(
  name: string,
  overrides: Partial<KafkaSettings> = {},
): KafkaSettings {
  const base = loadConfig({ env: serviceEnv('STOCKADE_KAFKA_') }).kafka;
  return { ...base, topic: `stockade-test-${name}-${process.pid}-${Date.now()}`, ...overrides };
}

/** True if something accepts TCP connections at the first broker (bounded by 2 s). */
export function brokerReachable(brokers: readonly string[]): Promise<boolean> {
  const hostPort = brokers[0] ?? '';
  const i = hostPort.lastIndexOf(':');
  return tcpReachable(hostPort.slice(0, i), Number(hostPort.slice(i + 1)));
}

/**
 * Fails the test when CI=true and the broker is unreachable (CI starts it), else skips loudly.
 * Returns whether the Kafka tests can run.
 */
export async function requireKafka(t: Test, settings: KafkaSettings): Promise<boolean> {
  const up = await brokerReachable(settings.brokers);
  const problem = up ? null : `no Kafka broker at ${settings.brokers.join(',')}`;
  return requireService(t, 'Kafka', problem, 'run `bash scripts/services.sh up kafka`');
}

/** Stops or starts the real broker with the project's script (for the outage tests). */
export function kafkaServices(command: 'up' | 'down'): Promise<void> {
  return services(command, 'kafka');
}

/**
 * A "broker" that accepts connections, reads, and never answers (hung, partitioned, paused):
 * a network fault rather than a Kafka stand-in, so tests of it run without the real broker.
 */
export async function silentBroker(): Promise<{
  address: string;
  port: number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | null = null;
  return {
    address: `127.0.0.1:${port}`,
    port,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      })),
  };
}
