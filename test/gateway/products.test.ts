/**
 * The product API against real MariaDB and Redis: PUT/GET, validation, the look-aside cache
 * (a hit does not reach MySQL; an update invalidates), and the version check.
 */
import t from 'tap';
import { request } from './helpers.js';
import { startCatalogServer } from './catalog-helpers.js';

t.test('PUT creates then updates; GET reads through the cache', async (t) => {
  const s = await startCatalogServer(t);
  if (!s) return;
  const put = await request(`${s.url}/v1/products/tee-1`, 'PUT', {
    name: 'Black tee',
    description: 'Cotton, size M',
    price: 19.5,
    imageUrls: ['https://cdn.example/tee-1/front.jpg'],
    sku: 'tee-black-m',
  });
  t.equal(put.status, 201, 'a new product is created');
  t.equal(put.body.status, 'created');
  t.match(put.body.product, {
    id: 'tee-1',
    sku: 'tee-black-m',
    name: 'Black tee',
    description: 'Cotton, size M',
    price: 19.5,
    imageUrls: ['https://cdn.example/tee-1/front.jpg'],
    moderationState: 'pending',
    moderationOverride: false,
    version: 1,
    images: [],
  });
  t.type(put.body.product.createdAt, 'number');

  const first = await request(`${s.url}/v1/products/tee-1`, 'GET');
  t.equal(first.status, 200);
  t.same(first.body, put.body.product, 'GET answers what PUT wrote');
  const loads = s.cache.stats.loads;
  const queries = s.store.queries;
  const second = await request(`${s.url}/v1/products/tee-1`, 'GET');
  t.same(second.body, first.body);
  t.equal(s.cache.stats.loads, loads, 'the second read was a cache hit');
  t.equal(s.store.queries, queries, 'a cache hit sends no query to MySQL');

  const upd = await request(`${s.url}/v1/products/tee-1`, 'PUT', { name: 'Black tee v2' });
  t.equal(upd.status, 200, 'an existing product is updated');
  t.equal(upd.body.status, 'updated');
  t.equal(upd.body.product.version, 2);
  t.equal(upd.body.product.description, null, 'PUT replaces: absent fields are cleared');
  t.same(upd.body.product.imageUrls, []);
  const after = await request(`${s.url}/v1/products/tee-1`, 'GET');
  t.equal(after.body.name, 'Black tee v2', 'the update invalidated the cached copy');
  t.equal(s.cache.stats.loads, loads + 1, 'and the next read loaded the record again');

  const stale = await request(`${s.url}/v1/products/tee-1`, 'PUT', { name: 'x', version: 1 });
  t.equal(stale.status, 409, 'an update based on an old version is refused');
  t.equal(stale.body.error.code, 'version_conflict');
  t.match(stale.body.error.message, /version 2/);
  const fresh = await request(`${s.url}/v1/products/tee-1`, 'PUT', { name: 'y', version: 2 });
  t.equal(fresh.status, 200);
  t.equal(fresh.body.product.version, 3);
  const again = await request(`${s.url}/v1/products/tee-1`, 'PUT', { name: 'z', version: 0 });
  t.equal(again.status, 409, 'version 0 only creates');
  const none = await request(`${s.url}/v1/products/nope`, 'PUT', { name: 'z', version: 4 });
  t.equal(none.status, 404);
  t.equal(none.body.error.code, 'unknown_product');

  const admin = s.audit.entries.filter((e) => e.kind === 'admin' && e.productId === 'tee-1');
  t.same(
    admin.map((e) => e.outcome),
    ['created', 'updated', 'updated'],
    'each product write is in the audit log',
  );
});

t.test('bad product input is refused with the field and changes nothing', async (t) => {
  const s = await startCatalogServer(t);
  if (!s) return;
  const put = (id: string, body: unknown) => request(`${s.url}/v1/products/${id}`, 'PUT', body);
  const cases: [string, unknown, string][] = [
    ['p1', {}, 'name'],
    ['p1', { name: '' }, 'name'],
    ['p1', { name: 'x'.repeat(256) }, 'name'],
    ['p1', { name: 'ok', price: -1 }, 'price'],
    ['p1', { name: 'ok', price: '12' }, 'price'],
    ['p1', { name: 'ok', imageUrls: 'https://a.example/x.jpg' }, 'imageUrls'],
    ['p1', { name: 'ok', imageUrls: ['ftp://a.example/x.jpg'] }, 'imageUrls'],
    ['p1', { name: 'ok', sku: 'has space' }, 'sku'],
    ['p1', { name: 'ok', description: 7 }, 'description'],
    ['p1', { name: 'ok', version: 1.5 }, 'version'],
    ['p1', { name: 'ok', colour: 'red' }, 'colour'],
    ['bad%20id', { name: 'ok' }, 'id'],
  ];
  for (const [id, body, field] of cases) {
    const r = await put(id, body);
    t.equal(r.status, 422, `${JSON.stringify(body)}: 422`);
    t.same(r.body.error.code, 'invalid');
    t.equal(r.body.error.field, field, `names ${field}`);
  }
  const malformed = await put('p1', '{"name":');
  t.equal(malformed.status, 400);
  t.equal(malformed.body.error.code, 'malformed_json');
  const wrongType = await request(`${s.url}/v1/products/p1`, 'PUT', 'name=x', {
    'content-type': 'text/plain',
  });
  t.equal(wrongType.status, 415);
  const get = await request(`${s.url}/v1/products/p1`, 'GET');
  t.equal(get.status, 404, 'nothing was written');
  t.equal(get.body.error.code, 'unknown_product');
  const badGet = await request(`${s.url}/v1/products/a%2Fb`, 'GET');
  t.equal(badGet.status, 422);
  t.equal(badGet.body.error.field, 'id');
  const method = await request(`${s.url}/v1/products/p1`, 'DELETE');
  t.equal(method.status, 405);
  t.equal(method.headers.get('allow'), 'GET, PUT');
});

t.test('with JWTs, writing a product takes an admin token', async (t) => {
  const { SECRET } = await import('./helpers.js');
  const { signJwt } = await import('../../gateway/index.js');
  const s = await startCatalogServer(t, {
    overrides: { gateway: { auth: 'jwt', jwtSecret: SECRET } },
  });
  if (!s) return;
  const exp = Math.floor(Date.now() / 1000) + 600;
  const user = signJwt({ sub: 'u1', exp }, { secret: SECRET });
  const admin = signJwt({ sub: 'a1', role: 'admin', exp }, { secret: SECRET });
  const body = { name: 'Mug' };
  const anon = await request(`${s.url}/v1/products/mug`, 'PUT', body);
  t.equal(anon.status, 401);
  const asUser = await request(`${s.url}/v1/products/mug`, 'PUT', body, {
    authorization: `Bearer ${user}`,
  });
  t.equal(asUser.status, 403);
  const asAdmin = await request(`${s.url}/v1/products/mug`, 'PUT', body, {
    authorization: `Bearer ${admin}`,
  });
  t.equal(asAdmin.status, 201);
  const read = await request(`${s.url}/v1/products/mug`, 'GET');
  t.equal(read.status, 200, 'anyone may read a product');
  const entry = s.audit.entries.find((e) => e.kind === 'admin' && e.productId === 'mug');
  t.equal(entry?.userId, 'a1', 'the audit entry names the admin');
});

t.test(
  'the sale gate follows the catalog given to the gateway, not the products config',
  async (t) => {
    const s = await startCatalogServer(t);
    if (!s) return;
    // An embedder's catalog that requires moderation, on a gateway whose config has products off:
    // a sale of a product's SKU must still be gated, on every thread.
    const { startGateway } = await import('../../gateway/index.js');
    const { CatalogService } = await import('../../cli/index.js');
    const { loadConfig } = await import('../../engine/index.js');
    const catalog = new CatalogService({
      records: s.store,
      cache: null,
      moderator: null,
      requireModeration: true,
      log: null,
    });
    const config = loadConfig({
      env: {},
      overrides: {
        log: { level: 'silent' },
        gateway: {
          port: 0,
          host: '127.0.0.1',
          auth: 'none',
          rateLimitPerS: 0,
          threads: 2,
          threadPorts: 'consecutive',
        },
        products: { enabled: false },
      },
    });
    const g = await startGateway({ engine: s.engine, config, catalog });
    t.teardown(() => g.close());
    t.equal(
      (
        await s.store.upsert('gated-p', {
          name: 'P',
          description: null,
          price: null,
          imageUrls: [],
          sku: 'gated',
        })
      ).status,
      'created',
    );
    for (const port of g.ports) {
      const r = await request(`http://127.0.0.1:${port}/v1/skus/gated`, 'PUT', { stock: 2 });
      t.equal(r.status, 409, `thread on port ${port}: gated`);
      t.equal(r.body.error.code, 'moderation_required');
    }
  },
);
