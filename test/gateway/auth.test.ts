import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../engine/index.js';
import { JwtVerifier, TokenBucketLimiter, createVerifier, signJwt } from '../../gateway/index.js';
import { SECRET, request, startServer } from './helpers.js';

const now = () => Math.floor(Date.now() / 1000);
const { publicKey, privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

t.test(
  'JwtVerifier: HS256 and RS256, exp/nbf with leeway, and the tokens it refuses',
  async (t) => {
    let clockMs = 1_000_000_000_000;
    const v = new JwtVerifier(Buffer.from(SECRET), null, 30, () => clockMs);
    const nowS = clockMs / 1000;
    const hs = signJwt({ sub: 'alice', exp: nowS + 60 }, { secret: SECRET });
    t.match(v.verify(hs), { userId: 'alice', admin: false });
    t.equal(v.verifyHeader(`Bearer ${hs}`)?.userId, 'alice');
    t.equal(v.verifyHeader(hs), null, 'the Bearer scheme is required');
    t.equal(
      v.verify(signJwt({ sub: 'a', exp: nowS - 10 }, { secret: SECRET }))?.userId,
      'a',
      'within leeway',
    );
    t.equal(v.verify(signJwt({ sub: 'a', exp: nowS - 31 }, { secret: SECRET })), null, 'expired');
    t.equal(
      v.verify(signJwt({ sub: 'a', exp: nowS + 60, nbf: nowS + 60 }, { secret: SECRET })),
      null,
      'not yet',
    );
    t.equal(v.verify(signJwt({ sub: 'a' }, { secret: SECRET })), null, 'exp is required');
    t.equal(v.verify(signJwt({ exp: nowS + 60 }, { secret: SECRET })), null, 'sub is required');
    t.equal(
      v.verify(
        signJwt({ sub: 'a', exp: nowS + 60 }, { secret: 'another-secret-of-at-least-32-bytes!!' }),
      ),
      null,
    );
    t.equal(v.verify(hs.slice(0, -2) + 'xx'), null, 'tampered signature');
    t.equal(v.verify('not.a.token'), null);
    t.equal(v.verify('onlyonepart'), null);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'a', exp: nowS + 60 }),
    ).toString('base64url')}.`;
    t.equal(v.verify(none), null, 'alg none is refused');
    t.equal(
      v.verify(signJwt({ sub: 'a', exp: nowS + 60 }, { privateKeyPem: privateKey })),
      null,
      'no RSA key configured',
    );
    t.equal(
      v.verify(signJwt({ sub: 'root', role: 'admin', exp: nowS + 60 }, { secret: SECRET }))?.admin,
      true,
    );
    // A cached token is still rechecked against the clock.
    clockMs += 200_000;
    t.equal(v.verify(hs), null, 'a cached token expires too');

    const rs = new JwtVerifier(null, createVerifierKey(), 0);
    const good = signJwt({ sub: 'bob', exp: now() + 60 }, { privateKeyPem: privateKey });
    t.equal(rs.verify(good)?.userId, 'bob');
    // Algorithm confusion: an HS256 token "signed" with the public key text must not pass.
    t.equal(rs.verify(signJwt({ sub: 'bob', exp: now() + 60 }, { secret: publicKey })), null);
  },
);

function createVerifierKey() {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-jwt-'));
  const path = join(dir, 'pub.pem');
  writeFileSync(path, publicKey);
  const config = loadConfig({
    env: {},
    overrides: { gateway: { auth: 'jwt', jwtPublicKey: path } },
  });
  const v = createVerifier(config.gateway)!;
  // Reach the loaded key through a verifier made from a file path.
  return (v as unknown as { rsaKey: KeyObject }).rsaKey;
}

t.test('createVerifier checks the cross-field rules and names the settings', async (t) => {
  const cfg = (gateway: Record<string, unknown>) =>
    loadConfig({ env: {}, overrides: { gateway } }).gateway;
  t.equal(createVerifier(cfg({ auth: 'none' })), null);
  t.throws(
    () => createVerifier(cfg({ auth: 'jwt' })),
    /jwtSecret .*STOCKADE_JWT_SECRET.*jwtPublicKey/,
  );
  t.throws(() => createVerifier(cfg({ auth: 'jwt', jwtSecret: 'short' })), /at least 32 bytes/);
  t.throws(
    () => createVerifier(cfg({ auth: 'jwt', jwtPublicKey: '/no/such/key.pem' })),
    /neither PEM text nor a readable file/,
  );
  t.ok(createVerifier(cfg({ auth: 'jwt', jwtPublicKey: publicKey })));
});

t.test('token bucket: burst, refill, and a bounded user map', async (t) => {
  const b = new TokenBucketLimiter(10, 3, 100);
  t.same(
    [b.take('u', 0), b.take('u', 0), b.take('u', 0), b.take('u', 0)],
    [true, true, true, false],
  );
  t.equal(b.take('u', 99), false, 'not yet a whole token back');
  t.equal(b.take('u', 100), true, 'one token after 100 ms at 10/s');
  for (let i = 0; i < 1000; i++) b.take(`user-${i}`, 0);
  t.ok(b.size <= 100, `the map stays bounded (${b.size})`);
});

t.test(
  'HTTP with jwt: 401 without or with a bad token, 403 for a user on admin routes',
  async (t) => {
    const s = await startServer({
      gateway: { auth: 'jwt', jwtSecret: SECRET, jwtPublicKey: publicKey },
    });
    t.teardown(() => s.close());
    const admin = `Bearer ${signJwt({ sub: 'ops', role: 'admin', exp: now() + 600 }, { secret: SECRET })}`;
    const user = `Bearer ${signJwt({ sub: 'alice', exp: now() + 600 }, { privateKeyPem: privateKey })}`;
    const expired = `Bearer ${signJwt({ sub: 'alice', exp: now() - 600 }, { secret: SECRET })}`;

    const put = (auth?: string) =>
      request(`${s.url}/v1/skus/j`, 'PUT', { stock: 5 }, auth ? { authorization: auth } : {});
    t.equal((await put()).body.error.code, 'unauthorized');
    t.equal((await put()).status, 401);
    const forbidden = await put(user);
    t.equal(forbidden.status, 403);
    t.equal(forbidden.body.error.code, 'forbidden');
    t.equal((await put(admin)).status, 201);

    const buy = (auth: string | undefined, body: object) =>
      request(`${s.url}/v1/skus/j/reservations`, 'POST', body, auth ? { authorization: auth } : {});
    t.equal((await buy(undefined, { qty: 1, idempotencyKey: 'k' })).status, 401);
    const exp = await buy(expired, { qty: 1, idempotencyKey: 'k' });
    t.equal(exp.status, 401);
    t.equal(exp.body.error.code, 'unauthorized');
    t.equal((await buy('Bearer garbage', { qty: 1, idempotencyKey: 'k' })).status, 401);
    const ok = await buy(user, { qty: 1, idempotencyKey: 'k', userId: 'mallory' });
    t.equal(ok.status, 201, 'the RS256 user buys');
    const events = await s.engine.getSku('j');
    t.equal(events!.reserved, 1);
    t.equal(
      (await request(`${s.url}/v1/skus/j`, 'GET')).status,
      200,
      'reading stock needs no token',
    );
    t.equal((await request(`${s.url}/v1/reservations/j:1/confirm`, 'POST')).status, 401);
    // Another buyer cannot act on alice's reservation: it is not found for them.
    const bob = `Bearer ${signJwt({ sub: 'bob', exp: now() + 600 }, { secret: SECRET })}`;
    for (const path of [
      'reservations/j:1/confirm',
      'reservations/j:1/cancel',
      'orders/j:1/return',
    ]) {
      const other = await request(`${s.url}/v1/${path}`, 'POST', undefined, { authorization: bob });
      t.equal(other.status, 404, `bob: ${path}`);
      t.equal(other.body.error.code, 'unknown_reservation');
    }
    t.match(await s.engine.getSku('j'), { reserved: 1, sold: 0 }, 'bob changed nothing');
    t.equal(
      (
        await request(`${s.url}/v1/reservations/j:1/confirm`, 'POST', undefined, {
          authorization: user,
        })
      ).status,
      200,
    );
    t.equal(
      (await request(`${s.url}/v1/skus/j/close`, 'POST', undefined, { authorization: user }))
        .status,
      403,
    );
    t.equal(
      (await request(`${s.url}/v1/skus/j/restock`, 'POST', { qty: 1 }, { authorization: admin }))
        .status,
      200,
    );
  },
);

t.test(
  'the user from the token is the buyer: per-user limits follow sub, not the body',
  async (t) => {
    const s = await startServer({ gateway: { auth: 'jwt', jwtSecret: SECRET } });
    t.teardown(() => s.close());
    const admin = {
      authorization: `Bearer ${signJwt({ sub: 'ops', role: 'admin', exp: now() + 600 }, { secret: SECRET })}`,
    };
    await request(`${s.url}/v1/skus/lim`, 'PUT', { stock: 10, perUserLimit: 1 }, admin);
    const alice = {
      authorization: `Bearer ${signJwt({ sub: 'alice', exp: now() + 600 }, { secret: SECRET })}`,
    };
    const r1 = await request(
      `${s.url}/v1/skus/lim/reservations`,
      'POST',
      { qty: 1, idempotencyKey: 'a', userId: 'x' },
      alice,
    );
    const r2 = await request(
      `${s.url}/v1/skus/lim/reservations`,
      'POST',
      { qty: 1, idempotencyKey: 'b', userId: 'y' },
      alice,
    );
    t.equal(r1.status, 201);
    t.equal(r2.body.error.code, 'limit_exceeded', 'a body userId cannot dodge the limit');
  },
);

t.test('rate limiting: 429 rate_limited with Retry-After past the burst', async (t) => {
  const s = await startServer({ gateway: { rateLimitPerS: 0.001, rateLimitBurst: 3 } });
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/r`, 'PUT', { stock: 100 });
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) {
    codes.push(
      (
        await request(`${s.url}/v1/skus/r/reservations`, 'POST', {
          userId: 'greedy',
          qty: 1,
          idempotencyKey: `k${i}`,
        })
      ).status,
    );
  }
  t.same(codes, [201, 201, 201, 429, 429]);
  const r = await request(`${s.url}/v1/skus/r/reservations`, 'POST', {
    userId: 'greedy',
    qty: 1,
    idempotencyKey: 'k9',
  });
  t.equal(r.body.error.code, 'rate_limited');
  t.equal(r.body.error.retriable, true);
  t.equal(r.headers.get('retry-after'), '1');
  const other = await request(`${s.url}/v1/skus/r/reservations`, 'POST', {
    userId: 'patient',
    qty: 1,
    idempotencyKey: 'p',
  });
  t.equal(other.status, 201, 'buckets are per user');
});
