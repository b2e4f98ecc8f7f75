import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE, configFields } from '../../engine/index.js';
import { withConfigTable } from '../../config/index.js';

const api = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8');
const configuration = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

t.test(
  'every error code is documented in docs/http-api.md with its retriable flag and HTTP status',
  async (t) => {
    for (const [code, info] of Object.entries(ERROR_CATALOGUE)) {
      const row = api.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      t.ok(row, `${code} has a row`);
      if (!row) continue;
      const cells = row.split('|').map((c) => c.trim());
      t.equal(cells[2], info.retriable ? 'yes' : 'no', `${code} retriable`);
      t.equal(cells[3], String(info.http), `${code} http`);
    }
  },
);

t.test('docs/configuration.md has the table generated from the field table', async (t) => {
  t.equal(
    configuration,
    withConfigTable(configuration),
    'run `npm run docs` after changing config/sections',
  );
  for (const f of configFields) {
    t.ok(configuration.includes(`| \`${f.key}\` | \`${f.env}\` |`), `${f.key} / ${f.env}`);
  }
});

t.test('every fault class is one StockadeError shape, from the one catalogue', async (t) => {
  const { EngineError, StockadeError } = await import('../../engine/index.js');
  const { JournalError } = await import('../../persistence/journal/index.js');
  const { ProjectionError } = await import('../../persistence/stores/index.js');
  const { ModerationError, moderationErrorCodes } = await import('../../moderation/index.js');
  const made = [
    ...(
      [
        'journal_unavailable',
        'journal_corrupt',
        'journal_mismatch',
        'journal_locked',
        'journal_fenced',
        'journal_unreplicated',
      ] as const
    ).map((code) => new JournalError(code, 'm')),
    ...(
      [
        'projection_unavailable',
        'projection_corrupt',
        'migration_locked',
        'migration_unsupported',
      ] as const
    ).map((code) => new ProjectionError(code, 'm')),
    ...moderationErrorCodes.map((code) => new ModerationError(code, 'm')),
    new EngineError('shard_unavailable'),
  ];
  for (const e of made) {
    t.ok(e instanceof StockadeError, `${e.name} ${e.code} is a StockadeError`);
    const info = ERROR_CATALOGUE[e.code];
    t.same([e.retriable, e.http], [info.retriable, info.http], `${e.code}: the catalogue's flags`);
  }
});

t.test('the README and docs/: every relative link resolves, the README stays short', async (t) => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  /** GitHub's anchor of a heading. */
  const slug = (h: string) =>
    h
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
  const anchorsOf = (text: string) => {
    const out = new Set<string>();
    let fence = false;
    for (const line of text.split('\n')) {
      if (line.startsWith('```')) fence = !fence;
      const m = /^#{1,6} (.*)$/.exec(line);
      if (!fence && m) out.add(slug(m[1]));
    }
    return out;
  };
  let links = 0;
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // http(s), mailto
      const [path, anchor] = target.split('#');
      const to = path === '' ? file : join(dirname(file), path);
      links++;
      if (!existsSync(join(root, to))) {
        t.fail(`${file}: ${target} — no file ${to}`);
        continue;
      }
      if (anchor !== undefined && to.endsWith('.md')) {
        const anchors = anchorsOf(readFileSync(join(root, to), 'utf8'));
        t.ok(anchors.has(anchor), `${file}: ${target} — a heading in ${to}`);
      }
    }
  }
  t.ok(links > 20, `${links} links checked`);
  const readme = readFileSync(join(root, 'README.md'), 'utf8').split('\n').length;
  t.ok(readme <= 300, `the README is ${readme} lines (at most 300; reference goes to docs/)`);
});
