import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE } from '../../engine/index.js';
import { GATEWAY_ERRORS, codeInfo } from '../../gateway/index.js';

const openapi = readFileSync(new URL('../../docs/openapi.yaml', import.meta.url), 'utf8');
const guide = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8');

t.test(
  'every code the gateway answers with is in the OpenAPI ErrorCode enum with its status',
  async (t) => {
    const enumBlock = openapi.slice(openapi.indexOf('    ErrorCode:'));
    for (const code of [
      ...Object.keys(ERROR_CATALOGUE),
      ...Object.keys(GATEWAY_ERRORS),
    ] as (keyof typeof ERROR_CATALOGUE)[]) {
      t.match(enumBlock, new RegExp(`^        - ${code}$`, 'm'), `${code} in the enum`);
      const status = codeInfo(code).http;
      t.match(
        enumBlock,
        new RegExp(`${status}[a-z_,\\s]*\\b${code}\\b`),
        `${code} listed under ${status}`,
      );
    }
  },
);

t.test(
  'every gateway code has a row in docs/http-api.md with its retriable flag and status',
  async (t) => {
    for (const [code, info] of Object.entries(GATEWAY_ERRORS)) {
      const row = guide.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      t.ok(row, `${code} has a row`);
      const cells = row!.split('|').map((c) => c.trim());
      t.equal(cells[2], info.retriable ? 'yes' : 'no', `${code} retriable`);
      t.equal(cells[3], String(info.http), `${code} http`);
    }
  },
);
