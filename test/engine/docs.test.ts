import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE, configFields } from '../../engine/index.js';
import { withConfigTable } from '../../config/index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

t.test(
  'every error code is documented in the README with its retriable flag and HTTP status',
  async (t) => {
    for (const [code, info] of Object.entries(ERROR_CATALOGUE)) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      t.ok(row, `${code} has a row`);
      if (!row) continue;
      const cells = row.split('|').map((c) => c.trim());
      t.equal(cells[2], info.retriable ? 'yes' : 'no', `${code} retriable`);
      t.equal(cells[3], String(info.http), `${code} http`);
    }
  },
);

t.test('the README configuration table is the one generated from the field table', async (t) => {
  t.equal(readme, withConfigTable(readme), 'run `npm run docs` after changing config/sections');
  for (const f of configFields) {
    t.ok(readme.includes(`| \`${f.key}\` | \`${f.env}\` |`), `${f.key} / ${f.env}`);
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
