import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { KafkaJournal } from '../../persistence/journal/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { kafkaTestSettings } from './kafka-helpers.js';
import { perSku, saleCommits } from './journal-helpers.js';

const DECODER = new URL('../fixtures/decode-journal.py', import.meta.url).pathname;

/** Runs a command, feeding it `input`; resolves to its stdout (binary safe). */
function run(cmd: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${cmd} exited ${code}: ${err}`)),
    );
    child.stdin.end(input);
  });
}

function found(cmd: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', `command -v ${cmd}`], (err) => resolve(!err));
  });
}

/**
 * Interoperability (registered by kafka-journal.test.ts): Debian's kcat reads the topic, and
 * test/fixtures/decode-journal.py, written from docs/journal-format.md alone, decodes it.
 */
export function interopTests(): void {
  t.test('kcat reads what Stockade wrote; a decoder made from the docs decodes it', async (t) => {
    for (const tool of ['kcat', 'python3']) {
      if (await found(tool)) continue;
      const why = `${tool} not found (apt-get update && apt-get install -y kcat python3)`;
      if (process.env.CI === 'true') t.fail(`${why} (CI=true: the interop test must run)`);
      else t.skip(`SKIPPED the kcat interop test: ${why}`, () => {});
      return;
    }
    const s = kafkaTestSettings('interop');
    const j = new KafkaJournal(s, 2);
    t.teardown(() => j.close());
    const want: SkuEvent[][] = [[], []];
    for (let shard = 0; shard < 2; shard++) {
      const sale = saleCommits([`mug-${shard}`, 'tee-✓', 'cap'], 40 + shard);
      for (let k = 0; k < 3; k++) {
        const c = k === 2 ? sale.close() : sale.commit(30);
        await j.append(shard, c.payload);
        want[shard].push(...c.events);
      }
    }
    for (let shard = 0; shard < 2; shard++) {
      const format = '%p %o %K %S\n%k%s%h\n';
      const where = ['-b', s.brokers.join(','), '-t', s.topic, '-p', String(shard)];
      const raw = await run('kcat', ['-C', '-q', ...where, '-o', 'beginning', '-e', '-f', format]);
      const decoded = (await run('python3', [DECODER], raw)).toString('utf8').trim().split('\n');
      const events = decoded.map((line) => {
        const record = JSON.parse(line) as Record<string, unknown>;
        const { partition, offset: _offset, key, ...event } = record;
        t.equal(partition, shard, 'partition = shard');
        t.equal(key, event.sku, 'key = SKU');
        return event as unknown as SkuEvent;
      });
      const what = `shard ${shard}: the same events, per SKU in order`;
      t.same(perSku(events), perSku(want[shard]), what);
    }
  });
}
