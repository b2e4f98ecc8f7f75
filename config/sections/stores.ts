import { field } from '../field.js';

/**
 * The read-side stores the projections write (MySQL/MariaDB, MongoDB) and the Redis cache.
 * `scripts/services.sh up` writes these variables to `.services/env`.
 */
export const storeFields = [
  field({
    key: 'mysql.url',
    kind: 'string',
    min: 1,
    max: 2048,
    default: 'mysql://stockade:stockade@127.0.0.1:3306/stockade',
    env: 'STOCKADE_MYSQL_URL',
    doc: 'MySQL/MariaDB connection URL for the projections.',
  }),
  field({
    key: 'redis.url',
    kind: 'string',
    min: 1,
    max: 2048,
    default: 'redis://127.0.0.1:6379',
    env: 'STOCKADE_REDIS_URL',
    doc: 'Redis URL for the product cache and shared rate limits.',
  }),
  field({
    key: 'mongo.url',
    kind: 'string',
    min: 1,
    max: 2048,
    default: 'mongodb://127.0.0.1:27017/stockade',
    env: 'STOCKADE_MONGO_URL',
    doc: 'MongoDB (or FerretDB) URL for the audit log.',
  }),
] as const;
