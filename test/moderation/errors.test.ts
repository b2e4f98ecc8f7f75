// The error catalogue is documented code by code, image errors are 4xx, and an error keeps its
// meaning across a structured clone (the thread boundary), where its class is lost.
import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  ModerationError,
  isModerationError,
  moderationErrors,
  moderationErrorCodes,
} from '../../moderation/index.js';

const doc = readFileSync(new URL('../../docs/moderation.md', import.meta.url), 'utf8');

t.test('every code has a docs/moderation.md row with its status and retriable flag', async (t) => {
  for (const code of moderationErrorCodes) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    t.ok(row, `${code} has a row`);
    if (!row) continue;
    const cells = row.split('|').map((c) => c.trim());
    t.equal(cells[2], String(moderationErrors[code].http), `${code} http`);
    t.equal(cells[3], moderationErrors[code].retriable ? 'yes' : 'no', `${code} retriable`);
  }
});

t.test('image errors are the client’s (4xx); the others are the service’s', async (t) => {
  for (const code of moderationErrorCodes) {
    const status = moderationErrors[code].http;
    if (code.startsWith('image_')) t.ok(status >= 400 && status < 500, `${code} is 4xx`);
    else t.ok(status >= 499, `${code} is not a client error`);
  }
});

t.test('a ModerationError survives structured clone as far as its code', async (t) => {
  const e = new ModerationError('image_truncated', 'cut short');
  t.same([e.code, e.http, e.retriable], ['image_truncated', 422, false]);
  t.equal(e.name, 'ModerationError');
  const copy = structuredClone({ code: e.code, message: e.message });
  t.ok(isModerationError(copy), 'recognized by code');
  t.notOk(isModerationError({ code: 'sold_out' }), 'not another catalogue’s code');
  t.notOk(isModerationError(null));
});
