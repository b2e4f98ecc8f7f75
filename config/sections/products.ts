import { field } from '../field.js';

/**
 * Products (`GET/PUT /v1/products/{id}`, records in MySQL, cached in Redis) and the image
 * moderation the gateway runs for them. Both are off by default, so `npm start` needs neither a
 * database nor a model; `stockade serve --products` and `--moderation` turn them on.
 */
export const productFields = [
  field({
    key: 'products.enabled',
    kind: 'bool',
    default: false,
    env: 'STOCKADE_PRODUCTS',
    doc:
      'Serve the product API: records in MySQL (`mysql.url`, migrated at start), read through ' +
      'a Redis cache (`redis.url`); `stockade serve --products` sets it.',
  }),
  field({
    key: 'products.moderation',
    kind: 'bool',
    default: false,
    env: 'STOCKADE_PRODUCTS_MODERATION',
    doc:
      'Run the image moderation pool (`moderation.*`, model in `moderation.modelDir`) for ' +
      '`POST /v1/moderation/images` and product images; `stockade serve --moderation` sets it.',
  }),
  field({
    key: 'products.requireModeration',
    kind: 'bool',
    default: true,
    env: 'STOCKADE_PRODUCTS_REQUIRE_MODERATION',
    doc:
      'With products on: a sale whose product’s images have not all been allowed cannot be ' +
      'defined or changed (`moderation_required`) unless an admin overrides it.',
  }),
  field({
    key: 'products.cacheTtlS',
    kind: 'int',
    min: 1,
    max: 86_400,
    default: 60,
    env: 'STOCKADE_PRODUCTS_CACHE_TTL_S',
    doc:
      'Seconds a product stays in the Redis cache; an update invalidates it at once, this ' +
      'bounds how long another node may serve a copy it loaded before the update.',
  }),
  field({
    key: 'products.cacheKeyPrefix',
    kind: 'string',
    min: 1,
    max: 128,
    default: 'stockade:product:',
    env: 'STOCKADE_PRODUCTS_CACHE_KEY_PREFIX',
    doc: 'Prefix of the product cache’s Redis keys, so several deployments can share one Redis.',
  }),
] as const;
