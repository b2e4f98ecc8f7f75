// A broker that accepts connections and never answers (hung, partitioned, paused): the Kafka
// journal must still answer within `kafka.appendTimeoutMs`. The "broker" is a bare TCP server,
// a network fault rather than a Kafka stand-in, so this runs without the real broker.
import t from 'tap';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { KafkaJournal } from '../../persistence/index.js';
import { loadConfig } from '../../config/index.js';
import { saleCommits } from './journal-helpers.js';

t.test('an unresponsive broker: appends and reads fail within the timeout', async (t) => {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket); // accepted, read, never answered
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const appendTimeoutMs = 300;
  const base = loadConfig({ env: {} }).kafka;
  const brokers = [`127.0.0.1:${port}`];
  const j = new KafkaJournal({ ...base, brokers, appendTimeoutMs, topic: 'never-there' }, 2);
  const payload = saleCommits(['a', 'b'], 3).commit(10).payload;
  const bound = appendTimeoutMs + 250;

  for (let i = 0; i < 3; i++) {
    // The first send is still retrying inside kafkajs after its append gave up: the later
    // appends wait for it (never two sends on one producer) and give up on time as well.
    const started = performance.now();
    await t.rejects(j.append(0, payload), { code: 'journal_unavailable' }, `append ${i}`);
    t.ok(performance.now() - started < bound, `append ${i} answered within ${bound} ms`);
  }
  let started = performance.now();
  await t.rejects(j.read(0, 0, () => {}), { code: 'journal_unavailable' }, 'a read');
  t.ok(performance.now() - started < bound, 'the read too');
  await t.rejects(j.append(1, payload), { code: 'journal_unavailable' }, 'another shard');

  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  started = performance.now();
  await j.close();
  t.ok(performance.now() - started < bound + 500, 'close does not hang either');
});
