/**
 * The suite's reports: markdown (machine, config, the generators' ceilings, one table per
 * scenario with ratios against the ceiling, Redis + Lua and MySQL measured in the same run) and
 * SVG charts (throughput and latency per system; latency against offered rate).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChart, lineChart } from './charts.js';
import { round } from './report.js';
import type { BenchStart } from './report.js';
import type { OpenLoopResult } from './load/open-loop.js';
import type { GeneratorCeilings, SuiteCase } from './suite-scenarios.js';

export interface ScenarioResult {
  /** `steady_c100`, `flash`, `rate`, ... */
  key: string;
  scenario: string;
  title: string;
  connections?: number;
  cases: SuiteCase[];
}

export interface SuiteReport extends BenchStart {
  config: Record<string, unknown>;
  generators: GeneratorCeilings;
  /** When each system's answer is durable, as it said at the start. */
  durability: Record<string, string>;
  scenarios: ScenarioResult[];
  finished_at: string;
}

const LABEL: Record<string, string> = {
  generator_noop: 'generator vs no-op',
  bare_uws_ceiling: 'bare uWS (ceiling)',
  redis_lua: 'Redis + Lua',
  mysql_conditional_update: 'MySQL UPDATE',
  stockade_file: 'Stockade, file journal',
  stockade_kafka: 'Stockade, Kafka journal',
};

const label = (name: string) => LABEL[name] ?? name;

function n(v: unknown): string {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return typeof v === 'string' ? v : JSON.stringify(v);
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : String(round(v, 2));
}

/** A ratio stored on the case (`ratio_to_…`), as the table shows it. */
function ratio(v: unknown): string {
  return typeof v === 'number' ? `${round(v, 2)}×` : '–';
}

/** Ratios of each case's throughput to the ceiling, Redis + Lua and MySQL of the same scenario. */
export function ratios(r: ScenarioResult, c: SuiteCase): Record<string, number | null> {
  const by = (name: string) => r.cases.find((x) => x.name === name);
  const of = (b: SuiteCase | undefined) =>
    b && b !== c && b.throughput_per_s > 0 ? round(c.throughput_per_s / b.throughput_per_s) : null;
  return {
    to_ceiling: of(by('bare_uws_ceiling')),
    to_redis_lua: of(by('redis_lua')),
    to_mysql: of(by('mysql_conditional_update')),
  };
}

function extraColumns(r: ScenarioResult): [string, (c: SuiteCase) => string][] {
  switch (r.scenario) {
    case 'flash':
      return [
        ['sold / stock', (c) => `${n(c.sold)} / ${n(c.stock)}`],
        [
          'sold out after',
          (c) =>
            c.time_to_sell_out_ms === null ? 'not sold out' : `${n(c.time_to_sell_out_ms)} ms`,
        ],
        ['selling: answers/s, p99', (c) => sub(c.selling)],
        ['sold out: answers/s, p99', (c) => sub(c.after_sold_out)],
        [
          'rejections',
          (c) =>
            Object.entries((c.rejections as Record<string, number>) ?? {})
              .map(([k, v]) => `${k} ${n(v)}`)
              .join(', '),
        ],
      ];
    case 'rate':
      return [['at the next step', (c) => nextStep(c)]];
    case 'read':
      return [['purchases/s beside', (c) => n(c.purchases_per_s)]];
    case 'lifecycle':
      return [
        [
          'confirmed / cancelled / left to expire',
          (c) => `${n(c.confirmed)} / ${n(c.cancelled)} / ${n(c.left_to_expire)}`,
        ],
        ['sold', (c) => n(c.sold)],
        ['stock came back', (c) => (c.stock_came_back ? 'yes' : 'NO')],
      ];
    default:
      return [['units sold, read back (warm-up included)', (c) => n(c.sold)]];
  }
}

/** The first rate the system did not hold, with its p99 (or that the ladder ended). */
function nextStep(c: SuiteCase): string {
  const ladder = (c.ladder as OpenLoopResult[] | undefined) ?? [];
  const miss = ladder.find((s) => s.rate > (c.rate ?? 0));
  if (!miss) return 'held every step';
  if (miss.answered === 0) return `${n(miss.rate)}/s: nothing answered`;
  const lost = miss.dropped + miss.timed_out;
  return `${n(miss.rate)}/s: p99 ${n(miss.latency_ms.p99)} ms${lost > 0 ? `, ${n(lost)} unanswered` : ''}`;
}

function sub(v: unknown): string {
  const x = v as { answers_per_s: number | null; latency_ms: { p99: number } } | undefined;
  return x ? `${n(x.answers_per_s)}/s, ${n(x.latency_ms.p99)} ms` : '–';
}

/** What the throughput column counts, where it is not purchases answered 2xx per second. */
const HEADS: Record<string, string> = {
  rate: 'highest rate held/s',
  read: 'reads 2xx/s',
  flash: 'answers/s (201 and 409)',
  lifecycle: 'requests answered/s',
};

function table(r: ScenarioResult): string {
  const extra = extraColumns(r);
  const head = [
    'system',
    HEADS[r.scenario] ?? 'purchases 2xx/s',
    'p50 ms',
    'p99 ms',
    'oversold',
    ...extra.map((e) => e[0]),
    '× ceiling',
    '× Redis+Lua',
    '× MySQL',
  ];
  // A system that held no step of the ladder has no latency to show.
  const none = (c: SuiteCase) => r.scenario === 'rate' && !c.rate;
  const rows = r.cases.map((c) => [
    label(c.name),
    n(c.throughput_per_s),
    none(c) ? '–' : n(c.latency_ms.p50),
    none(c) ? '–' : n(c.latency_ms.p99),
    c.oversold === null ? 'n/a' : n(c.oversold),
    ...extra.map((e) => e[1](c)),
    ratio(c.ratio_to_ceiling),
    ratio(c.ratio_to_redis_lua),
    ratio(c.ratio_to_mysql),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const tool = r.cases[0];
  const gen = tool
    ? `${tool.tool}; the generator alone reaches ${n(tool.generator_ceiling_per_s)}/s against a no-op server`
    : '';
  return [
    `### ${r.title}${r.connections ? ` — ${r.connections} connections` : ''}`,
    '',
    `Load: ${gen}.`,
    '',
    line(head),
    line(head.map(() => '---')),
    ...rows.map(line),
  ].join('\n');
}

export function suiteMarkdown(
  report: SuiteReport,
  charts: { file: string; title: string }[],
): string {
  const m = report.machine;
  const g = report.generators;
  return [
    `## Benchmark suite: ${report.scenario.replace(/^suite:/, '')}`,
    '',
    `Machine: ${m.cpus} CPUs (${m.cpu_model}), ${m.memory_gib} GiB, ${m.platform}, Node ${m.node}; load average at start ${report.load_avg_at_start.join(' / ')}. Run ${report.started_at} → ${report.finished_at}.`,
    '',
    `Config: \`${JSON.stringify(report.config)}\``,
    '',
    `Generators against a no-op server, same run: autocannon (one thread, 100 connections) ${n(g.autocannon_per_s)}/s` +
      `${g.autocannon_workers_per_s !== null ? `; autocannon (two worker threads) ${n(g.autocannon_workers_per_s)}/s` : ''}` +
      `${g.wrk_per_s !== null ? `; wrk (two threads) ${n(g.wrk_per_s)}/s` : ''}` +
      `${g.ws_per_s !== null ? `; ws clients ${n(g.ws_per_s)}/s` : ''}` +
      `${g.open_loop_per_s !== null ? `; open loop holds ${n(g.open_loop_per_s)}/s at p99 ≤ ${String(report.config.p99_bound_ms)} ms` : ''}. ` +
      'A system whose figure is near its generator’s was limited by the generator, not by itself.',
    '',
    'What each system’s answer means (as configured in this run):',
    '',
    ...Object.entries(report.durability).map(([name, d]) => `- ${label(name)}: ${d}.`),
    '',
    ...report.scenarios.flatMap((r) => [table(r), '']),
    ...charts.map((c) => `![${c.title}](${c.file})`),
    '',
  ].join('\n');
}

type Chart = { file: string; title: string; svg: string };

function steadyCharts(report: SuiteReport): Chart[] {
  const steady = report.scenarios.filter((r) => r.scenario === 'steady');
  if (steady.length === 0) return [];
  const systems = [...new Set(steady.flatMap((r) => r.cases.map((c) => c.name)))];
  const at = (r: ScenarioResult, name: string, pick: (c: SuiteCase) => number) => {
    const c = r.cases.find((x) => x.name === name);
    return c ? pick(c) : null;
  };
  const throughput = barChart({
    title: 'steady: purchases answered 2xx per second (closed loop)',
    unit: 'purchases/s',
    groups: systems.map(label),
    series: steady.map((r) => ({
      name: `${r.connections} connections`,
      values: systems.map((s) => at(r, s, (c) => c.throughput_per_s)),
    })),
  });
  const latency = barChart({
    title: 'steady: latency p50 and p99 (ms)',
    unit: 'ms',
    groups: systems.map(label),
    series: steady.flatMap((r) => [
      {
        name: `p50, ${r.connections} conn.`,
        values: systems.map((s) => at(r, s, (c) => c.latency_ms.p50)),
      },
      {
        name: `p99, ${r.connections} conn.`,
        values: systems.map((s) => at(r, s, (c) => c.latency_ms.p99)),
      },
    ]),
  });
  return [
    { file: 'steady-throughput.svg', title: 'steady: purchases per second', svg: throughput },
    { file: 'steady-latency.svg', title: 'steady: latency percentiles', svg: latency },
  ];
}

function rateChart(report: SuiteReport): Chart[] {
  const rate = report.scenarios.find((r) => r.scenario === 'rate');
  if (!rate) return [];
  const bound = Number(report.config.p99_bound_ms);
  const svg = lineChart({
    title: 'rate: p99 from the intended send time, against offered rate (open loop)',
    xLabel: 'offered purchases per second',
    yLabel: 'p99 latency, ms (log)',
    logY: true,
    bound: { y: bound, label: `p99 bound ${bound} ms` },
    series: rate.cases.map((c) => ({
      name: label(c.name),
      // A step with no answer has no latency to draw (its percentiles would read 0).
      points: ((c.ladder as OpenLoopResult[]) ?? [])
        .filter((s) => s.answered > 0)
        .map((s): [number, number] => [s.rate, Math.max(0.01, s.latency_ms.p99)]),
    })),
  });
  return [{ file: 'rate-latency.svg', title: 'rate: p99 latency against offered rate', svg }];
}

function flashChart(report: SuiteReport): Chart[] {
  const flash = report.scenarios.find((r) => r.scenario === 'flash');
  if (!flash) return [];
  const first = flash.cases[0];
  const svg = barChart({
    title: `flash: time to sell out ${n(first?.stock)} units to ${n(first?.buyers)} buyers (ms)`,
    unit: 'ms',
    groups: flash.cases.map((c) => label(c.name)),
    series: [
      {
        name: 'time to sell out',
        values: flash.cases.map((c) => (c.time_to_sell_out_ms as number | null) ?? null),
      },
    ],
  });
  return [{ file: 'flash.svg', title: 'flash: time to sell out', svg }];
}

/** Writes the charts the report has data for into `dir`; returns their files and titles. */
export function writeCharts(report: SuiteReport, dir: string): { file: string; title: string }[] {
  const charts = [...steadyCharts(report), ...rateChart(report), ...flashChart(report)];
  for (const c of charts) writeFileSync(join(dir, c.file), c.svg);
  return charts.map(({ file, title }) => ({ file, title }));
}
