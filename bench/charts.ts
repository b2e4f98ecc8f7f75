/**
 * SVG charts for the benchmark reports, self-contained (no fonts or scripts to fetch): grouped
 * bars (throughput, latency per system) and lines (latency against offered rate).
 */

const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#9d755d'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(n: number): string {
  if (n >= 1_000_000) return `${round1(n / 1_000_000)}M`;
  if (n >= 10_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${round1(n / 1000)}k`;
  return String(round1(n));
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** A round axis maximum at or above `max`: 1, 2 or 5 times a power of ten. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function legend(names: string[], x: number, y: number): string {
  return names
    .map(
      (n, i) =>
        `<rect x="${x}" y="${y + i * 18}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>` +
        `<text x="${x + 18}" y="${y + i * 18 + 10}" font-size="12" ${FONT}>${escapeXml(n)}</text>`,
    )
    .join('');
}

export interface BarChart {
  title: string;
  unit: string;
  /** The categories along x (e.g. the systems). */
  groups: string[];
  /** One bar per series in each group; null: not measured there. */
  series: { name: string; values: (number | null)[] }[];
}

/** The plot area of a chart `height` high, with room for the legend (`right`) and labels. */
function frame(height: number, right: number, bottom: number) {
  const width = 860;
  const left = 70;
  const top = 40;
  return {
    width,
    height,
    left,
    right,
    top,
    plotW: width - left - right,
    plotH: height - top - bottom,
  };
}

export function barChart(c: BarChart): string {
  const { width, height, left, right, top, plotW, plotH } = frame(380, 170, 70);
  const max = niceMax(Math.max(0, ...c.series.flatMap((s) => s.values.map((v) => v ?? 0))));
  const groupW = plotW / Math.max(1, c.groups.length);
  const barW = (groupW * 0.8) / Math.max(1, c.series.length);
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    parts.push(
      `<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#ddd"/>` +
        `<text x="${left - 6}" y="${y + 4}" font-size="11" text-anchor="end" ${FONT}>${fmt((max * i) / 4)}</text>`,
    );
  }
  c.groups.forEach((g, gi) => {
    const gx = left + gi * groupW + groupW * 0.1;
    c.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || v === undefined) return;
      const h = (plotH * v) / max;
      const x = gx + si * barW;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" ` +
          `height="${h.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${escapeXml(`${g} · ${s.name}: ${v} ${c.unit}`)}</title></rect>` +
          `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(top + plotH - h - 4).toFixed(1)}" font-size="10" text-anchor="middle" ${FONT}>${fmt(v)}</text>`,
      );
    });
    parts.push(
      `<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 18}" font-size="11" text-anchor="middle" ${FONT}>${escapeXml(g)}</text>`,
    );
  });
  return svg(
    width,
    height,
    c.title,
    c.unit,
    parts.join('') +
      legend(
        c.series.map((s) => s.name),
        width - right + 16,
        top,
      ),
  );
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [x: number, y: number][] }[];
  /** A dashed horizontal line (e.g. the p99 bound), labelled. */
  bound?: { y: number; label: string };
  /** Log scale on y (latencies that span 1 ms to seconds). */
  logY?: boolean;
}

/** Where a y value goes on a plot `plotH` high from `top`, and the ticks to label. */
function yScale(
  ys: number[],
  logY: boolean,
  top: number,
  plotH: number,
): { py: (y: number) => number; ticks: number[] } {
  if (!logY) {
    const yMax = niceMax(Math.max(...ys, 0));
    return {
      py: (y) => top + plotH - (plotH * y) / yMax,
      ticks: [0, 1, 2, 3, 4].map((i) => (yMax * i) / 4),
    };
  }
  const lo = Math.floor(Math.log10(Math.max(0.01, Math.min(...ys.filter((y) => y > 0), 1))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...ys))));
  return {
    py: (y) => top + plotH - (plotH * (Math.log10(Math.max(y, 10 ** lo)) - lo)) / (hi - lo),
    ticks: Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)),
  };
}

export function lineChart(c: LineChart): string {
  const { width, height, left, right, top, plotW, plotH } = frame(420, 190, 60);
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1])).concat(c.bound ? [c.bound.y] : []);
  const xMax = niceMax(Math.max(1, ...xs));
  const px = (x: number) => left + (plotW * x) / xMax;
  const { py, ticks: yTicks } = yScale(ys, c.logY ?? false, top, plotH);
  const parts: string[] = [];
  for (const t of yTicks)
    parts.push(
      `<line x1="${left}" y1="${py(t).toFixed(1)}" x2="${left + plotW}" y2="${py(t).toFixed(1)}" stroke="#ddd"/>` +
        `<text x="${left - 6}" y="${(py(t) + 4).toFixed(1)}" font-size="11" text-anchor="end" ${FONT}>${fmt(t)}</text>`,
    );
  for (let i = 0; i <= 5; i++) {
    const x = (xMax * i) / 5;
    parts.push(
      `<text x="${px(x).toFixed(1)}" y="${top + plotH + 18}" font-size="11" text-anchor="middle" ${FONT}>${fmt(x)}</text>`,
    );
  }
  if (c.bound)
    parts.push(
      `<line x1="${left}" y1="${py(c.bound.y).toFixed(1)}" x2="${left + plotW}" y2="${py(c.bound.y).toFixed(1)}" stroke="#888" stroke-dasharray="6 4"/>` +
        `<text x="${left + plotW - 4}" y="${(py(c.bound.y) - 5).toFixed(1)}" font-size="11" text-anchor="end" fill="#555" ${FONT}>${escapeXml(c.bound.label)}</text>`,
    );
  c.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`,
    );
    for (const [x, y] of s.points)
      parts.push(
        `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"><title>${escapeXml(`${s.name}: ${fmt(x)} → ${y}`)}</title></circle>`,
      );
  });
  parts.push(
    `<text x="${left + plotW / 2}" y="${height - 18}" font-size="12" text-anchor="middle" ${FONT}>${escapeXml(c.xLabel)}</text>`,
  );
  return svg(
    width,
    height,
    c.title,
    c.yLabel,
    parts.join('') +
      legend(
        c.series.map((s) => s.name),
        width - right + 16,
        top,
      ),
  );
}

function svg(width: number, height: number, title: string, yLabel: string, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="100%" height="100%" fill="#fff"/>` +
    `<text x="16" y="24" font-size="15" font-weight="600" ${FONT}>${escapeXml(title)}</text>` +
    `<text x="16" y="${height / 2}" font-size="12" transform="rotate(-90 16 ${height / 2})" text-anchor="middle" ${FONT}>${escapeXml(yLabel)}</text>` +
    body +
    `</svg>\n`
  );
}
