import { storeFault } from './store-scenarios.js';
import { mongoUrl, redisUrl } from '../persistence/store-helpers.js';
import { mysqlTestUrl } from '../persistence/mysql-helpers.js';
const r = await storeFault({
  seed: 1,
  store: process.argv[2] as 'redis',
  fault: process.argv[3] as 'kill',
  faultMs: 5_000,
  mysqlUrl: mysqlTestUrl(),
  redisUrl: redisUrl(),
  mongoUrl: mongoUrl(),
  lanes: 6,
  progress: console.log,
});
console.log(JSON.stringify({ ...r, refusals: undefined }));
process.exit(0);
