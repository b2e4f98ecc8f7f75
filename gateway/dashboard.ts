/**
 * The live dashboard (`GET /`): one self-contained page, inline CSS and JS, no CDN. It opens
 * the WebSocket, subscribes to every SKU's stock (`*`) and to the `stats` topic, and redraws:
 * tiles (purchases and attempts per second, units taken, p99 latency), two charts over the last
 * minute (purchases per second; rejections per second by reason, stacked), and one card per
 * SKU with its stock draining and its state in plain words (on sale, sold out, closed, not open
 * yet, ended). It reconnects on its own if the server restarts. Laid out for a laptop screen
 * (1280×800) and narrower ones alike.
 */
const CSS = `
*{box-sizing:border-box}html,body{height:100%}body{margin:0;display:flex;flex-direction:column;
font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#0f1419;color:#e6e6e6}
header{display:flex;align-items:center;gap:12px;padding:12px 24px;background:#161c24;
border-bottom:1px solid #242c38}h1{font-size:18px;margin:0;font-weight:600}
#conn{margin-left:auto;padding:2px 10px;border-radius:10px;font-size:12px;background:#5a1f1f}
#conn.on{background:#1f5a2e}main{flex:1;padding:16px 24px;display:grid;gap:16px;
grid-template-columns:repeat(4,minmax(0,1fr));grid-template-rows:auto minmax(220px,1fr) auto;
align-content:start}.card{background:#161c24;border:1px solid #242c38;border-radius:8px;
padding:14px 16px;min-width:0}.card h2{margin:0 0 8px;font-size:12px;color:#9aa7b4;
text-transform:uppercase;letter-spacing:.05em}.big{font-size:32px;font-weight:600;
font-variant-numeric:tabular-nums}.muted{color:#9aa7b4}.chart{grid-column:span 2;display:flex;
flex-direction:column}.chart canvas{flex:1;width:100%;min-height:160px}#skus{grid-column:1/-1}
#skulist{display:grid;gap:12px;grid-template-columns:repeat(auto-fill,minmax(260px,1fr))}
.sku{background:#0f1419;border:1px solid #242c38;border-radius:6px;padding:10px 12px}
.sku .top{display:flex;justify-content:space-between;align-items:center;gap:8px}
.sku.over{opacity:.75}.badge{font-size:11px;font-weight:700;padding:2px 8px;border-radius:9px;
letter-spacing:.04em;white-space:nowrap}.badge.on_sale{background:#1f5a2e}.badge.sold_out{background:#8b2a2a}
.badge.closed,.badge.ended{background:#3a4452}.badge.not_open{background:#5c4a12}
.bar{height:14px;background:#242c38;border-radius:7px;overflow:hidden;margin:8px 0 6px}
.fill{height:100%;background:linear-gradient(90deg,#2ea043,#56d364);transition:width .2s}
.fill.low{background:linear-gradient(90deg,#d29922,#e3b341)}.fill.out{background:#6e2a2a}
.fill.shut{background:#3a4452}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;margin-top:6px;min-height:18px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
@media (max-width:900px){main{grid-template-columns:repeat(2,minmax(0,1fr))}}
`;

const JS = `
const $ = (id) => document.getElementById(id);
const skus = new Map();
const WINDOW = 60;
const purchases = [];
const rejections = [];
const COLORS = ['#f85149','#d29922','#a371f7','#58a6ff','#db61a2','#3fb950','#8b949e'];
const colorOf = new Map();
let ws = null;
function fmt(n) { return Number(n).toLocaleString('en-US'); }
function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = new URLSearchParams(location.search).get('token');
  ws = new WebSocket(proto + '//' + location.host + '/v1/ws' + (token ? '?token=' + encodeURIComponent(token) : ''));
  ws.onopen = () => {
    $('conn').textContent = 'live'; $('conn').className = 'on';
    ws.send(JSON.stringify({ type: 'subscribe', sku: '*' }));
    ws.send(JSON.stringify({ type: 'subscribe_stats' }));
  };
  ws.onclose = () => {
    $('conn').textContent = 'disconnected'; $('conn').className = '';
    setTimeout(connect, 1000);
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'stock') { skus.set(m.sku, m); drawSkus(); }
    else if (m.type === 'stats') drawStats(m);
  };
}
/** A sale's state in plain words: what a buyer would be told. */
function stateOf(s) {
  const now = Date.now();
  if (s.closed) return ['closed', 'CLOSED'];
  if (s.available === 0) return ['sold_out', 'SOLD OUT'];
  if (s.endsAt && now >= s.endsAt) return ['ended', 'ENDED'];
  if (s.startsAt && now < s.startsAt) return ['not_open', 'NOT OPEN YET'];
  return ['on_sale', 'ON SALE'];
}
function drawSkus() {
  const rows = [...skus.values()].sort((a, b) => a.sku.localeCompare(b.sku));
  const list = $('skulist');
  list.innerHTML = rows.length === 0 ? '<p class="muted">No SKUs yet: define one with PUT /v1/skus/{sku}.</p>' : '';
  let taken = 0;
  for (const s of rows) {
    taken += s.reserved + s.sold;
    const [state, label] = stateOf(s);
    // A sold-out SKU keeps a full, red bar: an empty bar reads as "no data".
    const pct = s.available === 0 ? 100 : s.stock > 0 ? (100 * s.available) / s.stock : 0;
    const cls =
      state === 'closed' || state === 'ended' ? 'fill shut'
      : s.available === 0 ? 'fill out' : pct < 20 ? 'fill low' : 'fill';
    const div = document.createElement('div');
    div.className = 'sku' + (state === 'on_sale' ? '' : ' over');
    div.dataset.sku = s.sku;
    div.dataset.state = state;
    div.innerHTML = '<div class="top"><b></b><span class="badge ' + state + '">' + label + '</span></div>' +
      '<div class="bar"><div class="' + cls + '" style="width:' + pct.toFixed(2) + '%"></div></div>' +
      '<div class="muted"><span class="available">' + fmt(s.available) + '</span> available · ' +
      fmt(s.reserved) + ' held · ' + fmt(s.sold) + ' sold of ' + fmt(s.stock) + '</div>';
    div.querySelector('b').textContent = s.name ? s.name + ' (' + s.sku + ')' : s.sku;
    list.appendChild(div);
  }
  $('taken').textContent = fmt(taken);
}
function drawStats(m) {
  $('pps').textContent = fmt(m.purchasesPerS);
  $('aps').textContent = fmt(m.attemptsPerS);
  $('p50').textContent = m.latencyMs.p50;
  $('p99').textContent = m.latencyMs.p99;
  purchases.push(m.purchasesPerS);
  rejections.push(m.rejections);
  if (purchases.length > WINDOW) { purchases.shift(); rejections.shift(); }
  for (const code of Object.keys(m.rejections)) {
    if (!colorOf.has(code)) colorOf.set(code, COLORS[colorOf.size % COLORS.length]);
  }
  drawPurchases();
  drawRejections();
}
/** A canvas sized to its box (device pixels), its 2D context, and its plot area. */
function surface(id) {
  const c = $(id); const r = window.devicePixelRatio || 1;
  const w = c.clientWidth; const h = c.clientHeight;
  c.width = Math.round(w * r); c.height = Math.round(h * r);
  const g = c.getContext('2d'); g.setTransform(r, 0, 0, r, 0, 0);
  g.clearRect(0, 0, w, h);
  return { c, g, w, h, left: 44, top: 8, right: w - 6, bottom: h - 18 };
}
function axes(s, max, unit) {
  const { g, left, top, right, bottom } = s;
  g.strokeStyle = '#242c38'; g.fillStyle = '#9aa7b4'; g.font = '11px system-ui,sans-serif';
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = bottom - f * (bottom - top);
    g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
    g.textAlign = 'right'; g.fillText(fmt(Math.round(max * f)), left - 6, y + 4);
  }
  g.textAlign = 'left'; g.fillText('-' + WINDOW + ' s', left, bottom + 14);
  g.textAlign = 'right'; g.fillText('now (' + unit + ')', right, bottom + 14);
}
function xOf(s, i, n) { return s.right - ((n - 1 - i) / (WINDOW - 1)) * (s.right - s.left); }
function drawPurchases() {
  const s = surface('purchases'); const max = Math.max(10, ...purchases) * 1.1;
  axes(s, max, 'per s');
  const { g, top, bottom } = s; const n = purchases.length;
  if (n === 0) return;
  g.beginPath();
  purchases.forEach((v, i) => {
    const x = xOf(s, i, n); const y = bottom - (v / max) * (bottom - top);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.strokeStyle = '#56d364'; g.lineWidth = 2; g.stroke();
  g.lineTo(xOf(s, n - 1, n), bottom); g.lineTo(xOf(s, 0, n), bottom); g.closePath();
  g.fillStyle = 'rgba(86,211,100,.15)'; g.fill();
  s.c.dataset.points = String(n);
}
function drawRejections() {
  const s = surface('rejections'); const n = rejections.length;
  const totals = rejections.map((r) => Object.values(r).reduce((a, b) => a + b, 0));
  const max = Math.max(10, ...totals) * 1.1;
  axes(s, max, 'per s');
  const { g, top, bottom } = s;
  const bar = Math.max(1, (s.right - s.left) / WINDOW - 1);
  rejections.forEach((r, i) => {
    let y = bottom;
    for (const [code, v] of Object.entries(r)) {
      const h = (v / max) * (bottom - top);
      g.fillStyle = colorOf.get(code); g.fillRect(xOf(s, i, n) - bar, y - h, bar, h);
      y -= h;
    }
  });
  s.c.dataset.points = String(n);
  const now = rejections[n - 1] || {};
  $('legend').innerHTML = colorOf.size === 0 ? '<span class="muted">no rejections</span>' : '';
  for (const [code, color] of colorOf) {
    const span = document.createElement('span');
    span.dataset.code = code;
    span.innerHTML = '<i></i>';
    span.firstChild.style.background = color;
    span.append(code + ' ' + fmt(now[code] || 0) + '/s');
    $('legend').appendChild(span);
  }
}
window.addEventListener('resize', () => { drawPurchases(); drawRejections(); });
connect();
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Stockade — live sale</title><style>${CSS}</style></head>
<body><header><h1>Stockade</h1><span class="muted">live flash sale</span><span id="conn">connecting</span></header>
<main>
<section class="card"><h2>Purchases per second</h2><div class="big" id="pps">0</div></section>
<section class="card"><h2>Attempts per second</h2><div class="big" id="aps">0</div></section>
<section class="card"><h2>Units taken</h2><div class="big" id="taken">0</div>
<div class="muted">held or sold, every SKU</div></section>
<section class="card"><h2>Purchase latency</h2><div class="big"><span id="p99">0</span> ms</div>
<div class="muted">p99 · p50 <span id="p50">0</span> ms, last second</div></section>
<section class="card chart"><h2>Purchases per second, last minute</h2><canvas id="purchases"></canvas></section>
<section class="card chart"><h2>Rejections per second by reason, last minute</h2><canvas id="rejections"></canvas>
<div class="legend" id="legend"><span class="muted">no rejections</span></div></section>
<section class="card" id="skus"><h2>Stock</h2><div id="skulist"><p class="muted">Waiting for data…</p></div></section>
</main><script>${JS}</script></body></html>`;

export function dashboardHtml(): string {
  return HTML;
}
