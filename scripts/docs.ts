/** `npm run docs`: regenerates docs/configuration.md's table from the config field table. */
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigTable } from '../config/index.js';

const path = new URL('../../docs/configuration.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withConfigTable(before);
writeFileSync(path, after);
process.stdout.write(
  after === before
    ? 'docs/configuration.md is up to date\n'
    : 'docs/configuration.md: config table updated\n',
);
