/** `npm run docs`: regenerates the README's configuration table from the config field table. */
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigTable } from '../config/index.js';

const path = new URL('../../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withConfigTable(before);
writeFileSync(path, after);
process.stdout.write(
  after === before ? 'README.md is up to date\n' : 'README.md: config table updated\n',
);
