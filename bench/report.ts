/**
 * The benchmark report convention shared by every scenario. Each case reports
 * `throughput_per_s`, `latency_ms: { p50, p99 }` and `oversold` (must be 0; null where the case
 * sells nothing, e.g. a ceiling that only parses and answers, or a journal's own appends); where
 * the same run
 * measured a ceiling or baseline, also `ceiling_throughput_per_s` and `ratio_to_ceiling`.
 * Figures are only comparable within one run: the machine is shared and noisy, so every scenario
 * measures its own ceiling in the same invocation and reports the ratio.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { cpus, totalmem, platform, release, availableParallelism, loadavg } from 'node:os';

export interface LatencyMs {
  p50: number;
  p99: number;
}

export interface BenchCase {
  name: string;
  throughput_per_s: number;
  latency_ms: LatencyMs;
  /**
   * Units sold beyond stock, as checked against the engine's state; null: the case sells nothing.
   */
  oversold: number | null;
  ceiling_throughput_per_s?: number;
  ratio_to_ceiling?: number;
  /** Anything else worth keeping next to the figures (counts, settings, outcomes). */
  [extra: string]: unknown;
}

export interface BenchReport extends BenchStart {
  config: Record<string, unknown>;
  cases: BenchCase[];
}

/** What a bench records as it starts (`benchStart`); `writeReport` adds the end. */
export interface BenchStart {
  scenario: string;
  started_at: string;
  machine: { cpus: number; cpu_model: string; memory_gib: number; platform: string; node: string };
  /** 1, 5 and 15 minute load averages: a busy machine shows here first. */
  load_avg_at_start: number[];
}

/** Call first thing in a bench: its scenario, start time, machine and load. */
export function benchStart(scenario: string): BenchStart {
  return {
    scenario,
    started_at: new Date().toISOString(),
    machine: machineInfo(),
    load_avg_at_start: loadAvg(),
  };
}

function loadAvg(): number[] {
  return loadavg().map((n) => Math.round(n * 100) / 100);
}

export function machineInfo(): BenchReport['machine'] {
  return {
    cpus: availableParallelism(),
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()}`,
    node: process.version,
  };
}

/** Percentile of an unsorted sample (sorts a copy); 0 for an empty sample. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return 0;
  const sorted = Float64Array.from(samples).sort();
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** A flag's value as a whole number ≥ 1, or an error that names the flag. */
export function positiveInt(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${flag} must be a whole number ≥ 1, got ${raw}`);
  return n;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * One case per name from several rounds of the same cases, each round with its ratios already
 * taken against its own baseline: every number is the median over the rounds (ratios included,
 * so a slow minute of a shared machine hits a case and its baseline alike instead of whichever
 * ran during it), `oversold` the worst round, and each round's figures are kept in `rounds`.
 */
const MEDIAN_SET_ABOVE = ['name', 'throughput_per_s', 'latency_ms', 'oversold'];

export function medianOfRounds(rounds: readonly BenchCase[][]): BenchCase[] {
  if (rounds.length === 0) throw new Error('medianOfRounds: no rounds');
  if (rounds.length === 1) return rounds[0];
  return rounds[0].map((first) => {
    const runs = rounds.map((r) => r.find((c) => c.name === first.name)!);
    const mid = (pick: (c: BenchCase) => unknown): unknown => {
      const xs = runs.map(pick);
      const nums = xs.filter((x): x is number => typeof x === 'number');
      return nums.length === xs.length ? round(median(nums)) : xs[0];
    };
    const out: BenchCase = {
      ...first,
      name: `${first.name} (median of ${runs.length})`,
      throughput_per_s: Math.round(median(runs.map((c) => c.throughput_per_s))),
      latency_ms: {
        p50: round(median(runs.map((c) => c.latency_ms.p50))),
        p99: round(median(runs.map((c) => c.latency_ms.p99))),
      },
      oversold: worstOversold(runs),
    };
    for (const key of Object.keys(first)) {
      if (!MEDIAN_SET_ABOVE.includes(key)) out[key] = mid((c) => c[key]);
    }
    out.rounds = runs.map((c) => ({
      throughput_per_s: c.throughput_per_s,
      latency_ms: c.latency_ms,
      ratio_to_ceiling: c.ratio_to_ceiling ?? null,
      ...(c.replay_events_per_s !== undefined
        ? { replay_events_per_s: c.replay_events_per_s }
        : {}),
      ...(c.time_to_ready_ms !== undefined ? { time_to_ready_ms: c.time_to_ready_ms } : {}),
    }));
    return out;
  });
}

/** The worst round's `oversold`; null if no round sold anything. */
function worstOversold(runs: readonly BenchCase[]): number | null {
  const checked = runs.map((c) => c.oversold).filter((o): o is number => o !== null);
  return checked.length === 0 ? null : Math.max(...checked);
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function fmt(n: unknown): string {
  if (n === null) return 'n/a';
  if (typeof n !== 'number') return n === undefined ? '' : JSON.stringify(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return String(round(n));
}

/** A markdown table of the cases; the same text is printed and written next to the JSON. */
export function markdownTable(report: BenchReport): string {
  const head = ['case', 'throughput/s', 'p50 ms', 'p99 ms', 'oversold', 'ceiling/s', 'ratio'];
  const rows = report.cases.map((c) => [
    c.name,
    fmt(c.throughput_per_s),
    fmt(c.latency_ms.p50),
    fmt(c.latency_ms.p99),
    fmt(c.oversold),
    fmt(c.ceiling_throughput_per_s),
    fmt(c.ratio_to_ceiling),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Prints the machine, config and table; writes JSON to `jsonPath` and markdown beside it. */
export function writeReport(report: BenchReport, jsonPath: string | undefined): void {
  const m = report.machine;
  process.stdout.write(
    `\n${report.scenario}: ${m.cpus} cpus (${m.cpu_model}), ${m.memory_gib} GiB, node ${m.node}\n` +
      `config: ${JSON.stringify(report.config)}\n\n${markdownTable(report)}\n`,
  );
  if (!jsonPath) return;
  const full = { ...report, finished_at: new Date().toISOString(), load_avg_at_end: loadAvg() };
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify(full, null, 2) + '\n');
  writeFileSync(jsonPath.replace(/\.json$/, '') + '.md', markdownTable(report) + '\n');
  process.stdout.write(`wrote ${jsonPath}\n`);
}
