/**
 * The live dashboard (`GET /`): one self-contained page, inline CSS and JS, no CDN. It opens
 * the WebSocket, subscribes to every SKU's stock (`*`) and to the `stats` topic, and redraws:
 * stock bars draining, purchases per second (with a 60-second sparkline), rejections by reason
 * and purchase latency. It reconnects on its own if the server restarts.
 */
const CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
background:#0f1419;color:#e6e6e6}header{display:flex;align-items:center;gap:12px;padding:14px 24px;
background:#161c24;border-bottom:1px solid #242c38}h1{font-size:18px;margin:0;font-weight:600}
#conn{padding:2px 10px;border-radius:10px;font-size:12px;background:#5a1f1f}
#conn.on{background:#1f5a2e}main{padding:20px 24px;display:grid;gap:20px;
grid-template-columns:repeat(auto-fit,minmax(320px,1fr))}.card{background:#161c24;
border:1px solid #242c38;border-radius:8px;padding:16px}.card h2{margin:0 0 10px;font-size:13px;
color:#9aa7b4;text-transform:uppercase;letter-spacing:.05em}.big{font-size:34px;font-weight:600}
.muted{color:#9aa7b4}.sku{margin:12px 0}.sku .top{display:flex;justify-content:space-between}
.bar{height:14px;background:#242c38;border-radius:7px;overflow:hidden;margin:6px 0}
.fill{height:100%;background:linear-gradient(90deg,#2ea043,#56d364);transition:width .2s}
.fill.low{background:linear-gradient(90deg,#d29922,#e3b341)}.fill.out{background:#6e2a2a}
table{width:100%;border-collapse:collapse}td{padding:3px 0}td.n{text-align:right;
font-variant-numeric:tabular-nums}canvas{width:100%;height:60px}
`;

const JS = `
const $ = (id) => document.getElementById(id);
const skus = new Map();
const history = [];
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
function drawSkus() {
  const rows = [...skus.values()].sort((a, b) => a.sku.localeCompare(b.sku));
  $('skus').innerHTML = rows.length === 0 ? '<p class="muted">No SKUs yet: define one with PUT /v1/skus/{sku}.</p>' : '';
  for (const s of rows) {
    // A sold-out SKU keeps a full, red bar: an empty bar reads as "no data".
    const pct = s.available === 0 ? 100 : s.stock > 0 ? (100 * s.available) / s.stock : 0;
    const cls = s.available === 0 ? 'fill out' : pct < 20 ? 'fill low' : 'fill';
    const div = document.createElement('div');
    div.className = 'sku';
    div.dataset.sku = s.sku;
    div.innerHTML = '<div class="top"><b></b><span class="muted"></span></div>' +
      '<div class="bar"><div class="' + cls + '" style="width:' + pct.toFixed(2) + '%"></div></div>' +
      '<div class="muted"><span class="available">' + fmt(s.available) + '</span> available · ' +
      fmt(s.reserved) + ' reserved · ' + fmt(s.sold) + ' sold of ' + fmt(s.stock) +
      (s.available === 0 ? ' · <b>sold out</b>' : '') + (s.closed ? ' · closed' : '') + '</div>';
    div.querySelector('b').textContent = s.name || s.sku;
    div.querySelector('.top .muted').textContent = s.sku;
    $('skus').appendChild(div);
  }
}
function drawStats(m) {
  $('pps').textContent = fmt(m.purchasesPerS);
  $('aps').textContent = fmt(m.attemptsPerS);
  $('p50').textContent = m.latencyMs.p50;
  $('p99').textContent = m.latencyMs.p99;
  const rej = Object.entries(m.rejections).sort((a, b) => b[1] - a[1]);
  $('rej').innerHTML = rej.length === 0 ? '<tr><td class="muted">none</td></tr>' : '';
  for (const [code, n] of rej) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td class="n"></td>';
    tr.children[0].textContent = code;
    tr.children[1].textContent = fmt(n) + '/s';
    $('rej').appendChild(tr);
  }
  history.push(m.purchasesPerS);
  if (history.length > 60) history.shift();
  spark();
}
function spark() {
  const c = $('spark'); const w = c.width = c.clientWidth; const h = c.height = 60;
  const g = c.getContext('2d'); const max = Math.max(1, ...history);
  g.strokeStyle = '#56d364'; g.lineWidth = 2; g.beginPath();
  history.forEach((v, i) => {
    const x = (i / 59) * w; const y = h - 4 - (v / max) * (h - 8);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}
connect();
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Stockade — live sale</title><style>${CSS}</style></head>
<body><header><h1>Stockade</h1><span class="muted">live flash sale</span><span id="conn">connecting</span></header>
<main>
<section class="card" style="grid-column:1/-1"><h2>Stock</h2><div id="skus"><p class="muted">Waiting for data…</p></div></section>
<section class="card"><h2>Purchases per second</h2><div class="big" id="pps">0</div>
<div class="muted"><span id="aps">0</span> attempts/s</div><canvas id="spark"></canvas></section>
<section class="card"><h2>Rejections by reason</h2><table id="rej"><tr><td class="muted">none</td></tr></table></section>
<section class="card"><h2>Purchase latency</h2><table>
<tr><td>p50</td><td class="n"><span id="p50">0</span> ms</td></tr>
<tr><td>p99</td><td class="n"><span id="p99">0</span> ms</td></tr></table>
<p class="muted">Bucket upper bounds, over the last second, across all gateway threads.</p></section>
</main><script>${JS}</script></body></html>`;

export function dashboardHtml(): string {
  return HTML;
}
