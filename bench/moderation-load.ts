/**
 * `npm run bench -- moderation-load`: what image moderation at full load costs the purchase
 * endpoint when both run in the same `stockade serve` process. In one run, with the cases
 * interleaved over `--rounds` (a neighbour's burst on a shared machine then hits each alike):
 *
 *   no_moderation     stockade serve --demo --auth none                      (the baseline)
 *   moderation_idle   the same with --moderation: the pool is up, no image is sent
 *   moderation_load   the same with --moderation, while this process keeps `--images-inflight`
 *                     uploads outstanding at POST /v1/moderation/images for the whole case, so
 *                     the pool always has images waiting. At its default priority (idle) the
 *                     pool runs only on CPU time the sale leaves, so "full load" means as much
 *                     moderation as the machine gives it: `images_moderated_per_s` says how
 *                     much that was, next to the purchases
 *
 * wrk drives the purchases exactly as `npm run bench -- http` does (its functions are reused:
 * the same Lua script, warm-up, restock, oversold check). The report gives each case's purchases
 * per second, p50/p99, images moderated per second in the loaded case, and the ratio of each
 * case to the baseline of the same round (the goal: moderation_load ≥ 0.9).
 *
 * Flags: --duration 10s, --warmup 3s, --connections 100, --wrk-threads 2, --rounds 2,
 * --size tiny|base (the generated ViT; default base, ViT-Base-sized), --images-inflight N
 * (default 2 × moderation.threads × moderation.batchSizeMax = 16), --model-dir DIR (reuse a
 * built model), --json FILE. Moderation runs with its defaults (1 thread, 1 intra-op thread).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { buildVitModel, VIT_BASE, VIT_TINY } from '../scripts/build-vit-model.js';
import { LUA, WRK_FLAGS, benchStockade, wrkConfig } from './http.js';
import type { Options, SideLoad } from './http.js';
import { benchStart, medianOfRounds, positiveInt, round, writeReport } from './report.js';
import type { BenchCase, BenchStart } from './report.js';

/** A 640×480 JPEG of noise: the size of a typical product photo upload. */
async function photo(seed: number): Promise<Buffer> {
  const w = 640;
  const h = 480;
  const rgb = Buffer.alloc(w * h * 3);
  let s = seed >>> 0;
  for (let i = 0; i < rgb.length; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    rgb[i] = s >>> 24;
  }
  return sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/**
 * Keeps `inflight` uploads outstanding until stopped: a closed loop, so the pool's queue stays
 * full without growing (each answer sends the next image). Stops by itself after 100 failures
 * in a row (the server went away), and then says so (`moderation_load_stopped_early`); every
 * failure is counted, verdicts from the first second on.
 */
function moderationLoad(images: Buffer[], inflight: number): SideLoad {
  return (base) => {
    let running = true;
    let verdicts = 0;
    let errors = 0;
    let failedInRow = 0;
    let startedAt = 0;
    let counting = false;
    const url = `${base}/v1/moderation/images`;
    const lane = async (k: number): Promise<void> => {
      for (let i = k; running && failedInRow < 100; i += inflight) {
        try {
          const r = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'image/jpeg' },
            body: images[i % images.length],
          });
          await r.arrayBuffer();
          failedInRow = r.ok ? 0 : failedInRow + 1;
          if (!r.ok) errors++;
          else if (counting) verdicts++;
        } catch {
          failedInRow++;
          errors++;
        }
      }
    };
    const lanes = Array.from({ length: inflight }, (_, k) => lane(k));
    // Count after the first second: the pool's first batch includes the model's warm-up.
    const countFrom = setTimeout(() => {
      counting = true;
      startedAt = performance.now();
    }, 1000);
    return {
      async stop() {
        clearTimeout(countFrom);
        const s = (performance.now() - startedAt) / 1000;
        const perS = counting && s > 0 ? verdicts / s : 0;
        running = false;
        await Promise.all(lanes);
        return {
          images_moderated_per_s: round(perS, 2),
          moderation_errors: errors,
          moderation_load_stopped_early: failedInRow >= 100,
        };
      },
    };
  };
}

interface Flags {
  duration: string;
  warmup: string;
  connections: number;
  wrkThreads: number;
  rounds: number;
  size: 'tiny' | 'base';
  inflight: number;
  modelDir: string | undefined;
  json: string | undefined;
}

function flagsOf(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...WRK_FLAGS,
      rounds: { type: 'string', default: '2' },
      size: { type: 'string', default: 'base' },
      'images-inflight': { type: 'string', default: '16' },
      'model-dir': { type: 'string' },
      json: { type: 'string' },
    },
  });
  if (values.size !== 'tiny' && values.size !== 'base')
    throw new Error(`--size must be tiny or base, got '${values.size}'`);
  return {
    duration: values.duration,
    warmup: values.warmup,
    connections: Number(values.connections),
    wrkThreads: Number(values['wrk-threads']),
    rounds: positiveInt('rounds', values.rounds),
    size: values.size,
    inflight: Math.max(1, Number(values['images-inflight'])),
    modelDir: values['model-dir'],
    json: values.json,
  };
}

/** `stockade serve`'s flags for the cases without moderation and with it. */
interface ServeArgs {
  plain: string[];
  withModeration: string[];
}

/**
 * Builds the model unless --model-dir names one, and the config file that points the server at
 * it: the child gets no STOCKADE_* variables (bench/http.ts), so its settings go in a file.
 */
function prepareModeration(dir: string, f: Flags): ServeArgs {
  let modelDir = f.modelDir === undefined ? undefined : resolve(f.modelDir);
  if (modelDir === undefined) {
    modelDir = join(dir, 'model');
    process.stdout.write(`building the ${f.size} ViT into ${modelDir} ...\n`);
    buildVitModel(modelDir, { ...(f.size === 'base' ? VIT_BASE : VIT_TINY), seed: 7 });
  }
  const configFile = join(dir, 'moderation.json');
  writeFileSync(configFile, JSON.stringify({ moderation: { modelDir } }));
  const plain = ['--journal', 'none'];
  return { plain, withModeration: [...plain, '--moderation', '--config', configFile] };
}

/** What every round shares: the flags, wrk's settings, the serve flags, the photos to upload. */
interface ModerationRun {
  f: Flags;
  o: Options;
  serve: ServeArgs;
  images: Buffer[];
}

/**
 * Round `r`: the three cases, with the baseline first so the others' ratios can be taken
 * against it. The table's "ceiling" columns hold that baseline: the same round without
 * moderation.
 */
async function runRound(m: ModerationRun, r: number): Promise<BenchCase[]> {
  const { f, o, serve } = m;
  const say = (c: string) =>
    process.stdout.write(`round ${r + 1}/${f.rounds} ${c}: ${o.warmup} + ${o.duration} ...\n`);
  const cases: BenchCase[] = [];
  const strip = (c: BenchCase & { raw?: string }): BenchCase => {
    delete c.raw;
    return c;
  };
  say('no_moderation');
  cases.push(strip(await benchStockade(o, serve.plain, 'no_moderation')));
  say('moderation_load');
  const loaded = moderationLoad(m.images, f.inflight);
  cases.push(strip(await benchStockade(o, serve.withModeration, 'moderation_load', loaded)));
  say('moderation_idle');
  cases.push(strip(await benchStockade(o, serve.withModeration, 'moderation_idle')));
  for (const c of cases) {
    c.ceiling_throughput_per_s = cases[0].throughput_per_s;
    c.ratio_to_ceiling = round(c.throughput_per_s / cases[0].throughput_per_s);
  }
  return cases;
}

/**
 * Prints and writes the report: the medians over the rounds, then every round's cases (the
 * goal is per round), and last the images moderated per second under load.
 */
function writeModerationReport(m: ModerationRun, head: BenchStart, rounds: BenchCase[][]): void {
  const { f, o } = m;
  const summary = medianOfRounds(rounds);
  const all: BenchCase[] = rounds.flatMap((cases, r) =>
    cases.map((c) => ({ ...c, name: `${c.name} #${r + 1}` })),
  );
  writeReport(
    {
      ...head,
      config: {
        ...wrkConfig(o),
        rounds: f.rounds,
        model: f.modelDir ?? `generated ViT (${f.size}, seed 7)`,
        images_inflight: f.inflight,
        image: '640×480 JPEG',
        moderation: 'defaults: threads 1, intraOpThreads 1, batchSizeMax 8',
        journal: 'none',
      },
      cases: [...summary, ...all],
    },
    f.json,
  );
  const loaded = all.filter((c) => c.name.startsWith('moderation_load'));
  process.stdout.write(
    `\nratio = purchases/s over the same round's no_moderation case (goal ≥ 0.9); ` +
      `images moderated per second under load: ` +
      `${loaded.map((c) => c.images_moderated_per_s as number).join(', ')}\n`,
  );
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('moderation-load');
  const f = flagsOf(argv);
  if (spawnSync('wrk', ['-v']).error)
    throw new Error('wrk is not installed (Debian: apt-get install -y wrk)');
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-modload-'));
  try {
    const script = join(dir, 'reserve.lua');
    writeFileSync(script, LUA);
    const o: Options = {
      duration: f.duration,
      warmup: f.warmup,
      connections: f.connections,
      wrkThreads: f.wrkThreads,
      script,
    };
    const serve = prepareModeration(dir, f);
    const images = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(photo));
    const m: ModerationRun = { f, o, serve, images };
    const rounds: BenchCase[][] = [];
    for (let r = 0; r < f.rounds; r++) rounds.push(await runRound(m, r));
    writeModerationReport(m, head, rounds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
