/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) loads `GET /` at 1280×800, connects its WebSocket, and shows a crowd
 * (`stockade crowd`, the command `npm run crowd` runs) selling a sale out: stock draining to
 * SOLD OUT, a closed sale as CLOSED, purchases per second and rejections by reason charted,
 * everything on one screen. Fails loudly when Chromium is missing: CI installs it
 * (`apt-get install -y chromium`). `DASHBOARD_SCREENSHOT=docs/dashboard.png` keeps the
 * screenshot there (the README shows it); otherwise it goes to the temporary directory.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { chromium } from 'playwright-core';
import { crowd } from '../../cli/crowd.js';
import { request, startServer } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
/** The page's document, inside `waitForFunction` (the test compiles without the DOM lib). */
declare const document: {
  getElementById(id: string): { textContent: string | null } | null;
  querySelector(s: string): { textContent: string | null; dataset?: Record<string, string> } | null;
  querySelectorAll(s: string): ArrayLike<{ getBoundingClientRect(): { bottom: number } }>;
  documentElement: { scrollWidth: number };
};

t.test('the dashboard shows a crowd selling a sale out, on one screen', async (t) => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install it with 'apt-get update && apt-get install -y chromium'`,
    );
  }
  const s = await startServer({ gateway: { wsStockUpdatesPerS: 20, rateLimitPerS: 0 } });
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/dash`, 'PUT', {
    stock: 2000,
    perUserLimit: 2,
    name: 'Dashboard tee',
  });
  await request(`${s.url}/v1/skus/mug`, 'PUT', { stock: 50, name: 'Mug' });
  await request(`${s.url}/v1/skus/cap`, 'PUT', { stock: 100, name: 'Cap' });
  t.equal((await request(`${s.url}/v1/skus/cap/close`, 'POST')).status, 200, 'cap closed');

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
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${s.url}/`);
  await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live');
  const available = (sku: string) =>
    page.locator(`[data-sku="${sku}"] .available`).textContent({ timeout: 10_000 });
  t.equal(await available('dash'), '2,000', 'the first snapshot shows the full stock');
  t.equal(await available('mug'), '50');
  const stateOf = (sku: string) =>
    page.locator(`[data-sku="${sku}"]`).getAttribute('data-state', { timeout: 10_000 });
  t.equal(await stateOf('dash'), 'on_sale');
  t.equal(await stateOf('cap'), 'closed', 'a closed sale says so');
  t.equal(await page.locator('[data-sku="cap"] .badge').textContent(), 'CLOSED');

  // A crowd of 1,500 buyers, 2 tries each, at 2,000 units: it sells out, exactly.
  const out = new PassThrough();
  let printed = '';
  out.on('data', (c: Buffer) => (printed += c.toString()));
  const report = await crowd(
    {
      url: new URL(s.url),
      sku: 'dash',
      buyers: 1_500,
      tries: 2,
      concurrency: 16,
      maxMs: 60_000,
    },
    out,
  );
  t.comment(printed.trim());
  t.equal(report.sold, 2000, 'the crowd bought exactly the stock');
  t.ok((report.refused.sold_out ?? 0) > 0, 'and then heard sold_out');
  t.match(report.sale, { available: 0, reserved: 2000 }, 'the server counts the same');
  t.match(printed, /sale 'dash': 0 available, 2,000 held, 0 sold of 2,000 — sold out/);
  for (let i = 0; i < 60; i++) {
    await request(`${s.url}/v1/skus/mug/reservations`, 'POST', {
      userId: `m${i}`,
      qty: 1,
      idempotencyKey: `m${i}`,
    });
  }

  await page.waitForFunction(
    () => document.querySelector('[data-sku="dash"] .available')?.textContent === '0',
    undefined,
    { timeout: 10_000 },
  );
  t.equal(await stateOf('dash'), 'sold_out', 'the stock drained to sold out');
  t.equal(await page.locator('[data-sku="dash"] .badge').textContent(), 'SOLD OUT');
  await page.waitForFunction(
    () => document.querySelector('[data-sku="mug"] .fill.out') !== null,
    undefined,
    { timeout: 10_000 },
  );
  t.pass('a sold-out SKU is drawn as sold out');
  await page.waitForFunction(
    () =>
      Number(document.querySelector('#purchases')?.dataset?.points ?? 0) >= 3 &&
      (document.getElementById('legend')?.textContent ?? '').includes('sold_out'),
    undefined,
    { timeout: 15_000 },
  );
  t.pass('purchases per second and rejections by reason are charted');
  t.equal(await page.locator('#taken').textContent(), '2,050', 'units taken are counted');

  const layout = await page.evaluate(() => {
    const bottoms = Array.from(
      document.querySelectorAll('.card, .sku'),
      (e) => e.getBoundingClientRect().bottom,
    );
    return { width: document.documentElement.scrollWidth, bottom: Math.max(...bottoms) };
  });
  t.ok(layout.width <= 1280, `no sideways scrolling at 1280 px (${layout.width})`);
  t.ok(layout.bottom <= 800, `everything on one 1280×800 screen (bottom ${layout.bottom} px)`);
  const chart = await page.locator('#purchases').boundingBox();
  t.ok(chart !== null && chart.height >= 150, `the charts fill their space (${chart?.height} px)`);

  const shot = process.env.DASHBOARD_SCREENSHOT ?? join(tmpdir(), 'stockade-dashboard.png');
  await page.screenshot({ path: shot });
  t.comment(`screenshot: ${shot}`);
  t.same(errors, [], 'no script errors on the page');
});
