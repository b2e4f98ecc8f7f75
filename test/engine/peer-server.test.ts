import t from 'tap';
import type { Test } from 'tap';
import { request } from 'node:http';
import { connect } from 'node:net';
import { EngineError } from '../../engine/index.js';
import { rejection } from '../../engine/results.js';
import { PeerServer } from '../../engine/peer-server.js';
import { PEER_BODY_BYTES_MAX, PEER_COUNT_HEADER } from '../../engine/remote-shard.js';

// What a member serves to the other members, against handlers that record what reaches them:
// every request that is refused must be refused before it reaches a shard.

type Call = { kind: 'batch' | 'control'; shard: number; detail: unknown };
type PeerServerHandlers = ConstructorParameters<typeof PeerServer>[0];

async function peer(t: Test, secret: string, handlers: Partial<PeerServerHandlers> = {}) {
  const calls: Call[] = [];
  const server = new PeerServer(
    {
      batch: (shard, bytes, count) => {
        calls.push({ kind: 'batch', shard, detail: { bytes: [...bytes], count } });
        return (
          handlers.batch?.(shard, bytes, count) ?? Promise.resolve(new Float64Array([1, 2, 3]))
        );
      },
      control: (shard, method, args) => {
        calls.push({ kind: 'control', shard, detail: { method, args } });
        return handlers.control?.(shard, method, args) ?? Promise.resolve({ echoed: args });
      },
    },
    secret,
  );
  const port = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  const post = async (path: string, body: string | Uint8Array, headers = {}) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, ...headers },
      body,
    });
    return { status: r.status, bytes: new Uint8Array(await r.arrayBuffer()) };
  };
  const json = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  return { port, calls, post, json, server };
}

t.test('a batch reaches its shard and its results come back as bytes', async (t) => {
  const { post, calls, server } = await peer(t, 's3cret');
  const r = await post('/v1/peer/shards/3/batch', new Uint8Array([7, 8, 9]), {
    [PEER_COUNT_HEADER]: '2',
  });
  t.equal(r.status, 200);
  t.same([...new Float64Array(r.bytes.buffer, r.bytes.byteOffset, 3)], [1, 2, 3]);
  t.same(calls, [{ kind: 'batch', shard: 3, detail: { bytes: [7, 8, 9], count: 2 } }]);
  t.equal(server.batchesServed, 1);
});

t.test('a control call reaches its shard; only the forwarded methods do', async (t) => {
  const { post, calls, json, server } = await peer(t, 's3cret');
  const ok = await post(
    '/v1/peer/shards/0/control',
    JSON.stringify({ method: 'get', args: ['x'] }),
  );
  t.equal(ok.status, 200);
  t.same(json(ok.bytes), { value: { echoed: ['x'] } });
  t.equal(server.callsServed, 1);
  for (const [body, code] of [
    ['{not json', 'malformed_json'],
    [JSON.stringify({ method: 'get' }), 'invalid'],
    [JSON.stringify({ method: 7, args: [] }), 'invalid'],
    [JSON.stringify({ method: 'shutdown', args: [] }), 'invalid'],
    [JSON.stringify({ method: 'ready', args: [] }), 'invalid'],
  ] as const) {
    const r = await post('/v1/peer/shards/0/control', body);
    t.match(json(r.bytes), { error: { code } }, `${body} → ${code}`);
    t.ok(r.status >= 400 && r.status < 500, `${body}: a 4xx (${r.status})`);
  }
  t.equal(calls.length, 1, 'no refused call reached the shard');
});

t.test('refusals: route, method, secret, count, size', async (t) => {
  const { post, calls, json, port } = await peer(t, 's3cret');
  const batch = (headers: Record<string, string>) =>
    post('/v1/peer/shards/1/batch', new Uint8Array([1]), headers);
  t.match(await batch({ authorization: 'Bearer wrong!' }), { status: 401 }, 'a wrong secret');
  t.match(await batch({ authorization: '' }), { status: 401 }, 'no secret');
  t.match(await batch({}), { status: 422 }, 'no count');
  t.match(await batch({ [PEER_COUNT_HEADER]: '0' }), { status: 422 }, 'a zero count');
  t.match(await batch({ [PEER_COUNT_HEADER]: '1.5' }), { status: 422 }, 'a fractional count');
  for (const path of ['/v1/peer/shards/1/other', '/v1/peer/shards/x/batch', '/v1/skus/a', '/']) {
    const r = await post(path, 'x');
    t.equal(r.status, 404, `${path}: 404`);
    t.match(json(r.bytes), { error: { code: 'not_found' } });
  }
  const get = await fetch(`http://127.0.0.1:${port}/v1/peer/shards/1/batch`);
  t.equal(get.status, 404, 'GET is no route');
  // A body declared larger than the bound is refused before it is read.
  const declared = await rawRequest(
    port,
    `POST /v1/peer/shards/1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n` +
      `${PEER_COUNT_HEADER}: 1\r\nContent-Length: ${PEER_BODY_BYTES_MAX + 1}\r\n\r\n`,
  );
  t.match(declared, /^HTTP\/1\.1 413 /, 'a declared oversized body: 413');
  // A chunked body that grows past the bound is refused too.
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        port,
        method: 'POST',
        path: '/v1/peer/shards/1/batch',
        headers: { authorization: 'Bearer s3cret', [PEER_COUNT_HEADER]: '1' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    const mb = Buffer.alloc(1024 * 1024, 1);
    for (let i = 0; i <= PEER_BODY_BYTES_MAX / mb.length; i++) req.write(mb);
    req.end();
  });
  t.equal(chunked, 413, 'a chunked body past the bound: 413');
  t.same(calls, [], 'nothing refused reached a shard');
});

t.test("a shard's refusal and a shard's failure keep their codes", async (t) => {
  const { post, json } = await peer(t, '', {
    batch: () => Promise.resolve(rejection('shard_unavailable')),
    control: (_shard, method) =>
      method === 'stats'
        ? Promise.reject(new EngineError('shard_unavailable', 'moving'))
        : Promise.reject(new Error('boom')),
  });
  const b = await post('/v1/peer/shards/2/batch', new Uint8Array([1]), {
    [PEER_COUNT_HEADER]: '1',
  });
  t.equal(b.status, 503, 'a batch the shard refused: 503');
  t.match(json(b.bytes), { error: { code: 'shard_unavailable' } });
  const c = await post('/v1/peer/shards/2/control', JSON.stringify({ method: 'stats', args: [] }));
  t.equal(c.status, 503, 'an engine error keeps its status');
  t.match(json(c.bytes), { error: { code: 'shard_unavailable' } });
  const d = await post('/v1/peer/shards/2/control', JSON.stringify({ method: 'get', args: [] }));
  t.equal(d.status, 500, 'anything else is internal');
  t.match(json(d.bytes), { error: { code: 'internal' } });
  const open = await post('/v1/peer/shards/2/batch', new Uint8Array([1]), {
    authorization: 'Bearer anything',
    [PEER_COUNT_HEADER]: '1',
  });
  t.equal(open.status, 503, 'without a secret set, no secret is asked for');
});

function rawRequest(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
  });
}
