/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) loads `GET /`, connects its WebSocket, and shows the stock draining while
 * the test buys. Fails loudly when Chromium is missing: CI installs it
 * (`apt-get install -y chromium`).
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { request, startServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** The page's document, inside `waitForFunction` (the test compiles without the DOM lib). */
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(s: string): { textContent: string | null } | null;
};

t.test('the dashboard shows stock changing while buyers buy', async (t) => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install it with 'apt-get update && apt-get install -y chromium'`,
    );
  }
  const s = await startServer({ gateway: { wsStockUpdatesPerS: 20 } });
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/dash`, 'PUT', { stock: 500, name: 'Dashboard tee' });
  await request(`${s.url}/v1/skus/mug`, 'PUT', { stock: 50, name: 'Mug' });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${s.url}/`);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live');
  const available = (sku: string) =>
    page.locator(`[data-sku="${sku}"] .available`).textContent({ timeout: 10_000 });
  t.equal(await available('dash'), '500', 'the first snapshot shows the full stock');
  t.equal(await available('mug'), '50');

  for (let i = 0; i < 120; i++) {
    const r = await request(`${s.url}/v1/skus/dash/reservations`, 'POST', {
      userId: `u${i}`,
      qty: 1,
      idempotencyKey: `k${i}`,
    });
    if (i < 3) t.equal(r.status, 201);
  }
  for (let i = 0; i < 60; i++) {
    await request(`${s.url}/v1/skus/mug/reservations`, 'POST', {
      userId: `m${i}`,
      qty: 1,
      idempotencyKey: `m${i}`,
    });
  }
  await page.waitForFunction(
    () => document.querySelector('[data-sku="dash"] .available')?.textContent === '380',
    undefined,
    { timeout: 10_000 },
  );
  t.pass('the stock drained on the page: 500 → 380');
  await page.waitForFunction(
    () => document.querySelector('[data-sku="mug"] .fill.out') !== null,
    undefined,
    {
      timeout: 10_000,
    },
  );
  t.pass('a sold-out SKU is drawn as sold out');
  await page.waitForFunction(
    () => (document.getElementById('rej')?.textContent ?? '').includes('sold_out'),
    undefined,
    {
      timeout: 10_000,
    },
  );
  t.pass('rejections by reason are shown');
  const shot = join(tmpdir(), 'stockade-dashboard.png');
  await page.screenshot({ path: shot });
  t.comment(`screenshot: ${shot}`);
  t.same(errors, [], 'no script errors on the page');
});
