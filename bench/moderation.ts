/**
 * `npm run bench -- moderation`: images per second and latency through the moderation pool,
 * against the ceiling of a bare onnxruntime session looping on the same, already preprocessed,
 * images in the same process and the same run.
 *
 *   bare cases   one InferenceSession on this thread; intraOpNumThreads × batch size from
 *                {1, cores} × {1, 8}; tensors prepared beforehand; the best is the ceiling
 *   pool cases   createModerator() with threads × intraOpThreads = cores, both splits; JPEG
 *                bytes in, verdict out (sniff, decode, resize, normalize, batch, run, softmax);
 *                a closed loop keeping 2 × threads × batchSizeMax images outstanding, so
 *                latency there is mostly queueing (Little's law); a last case keeps one
 *                image outstanding to show the latency of an idle pool
 *
 * The machine is shared, and a neighbour's test run can halve a case's figure. So every case is
 * measured in `--rounds` slices, interleaved (bare, bare, ..., pool, pool, bare, ...), with all
 * sessions and pools kept open; a burst of outside load then hits every case alike, and the
 * ratio to the ceiling stays meaningful.
 *
 * The model is a ViT-Base-sized network (224², patch 16, 768 wide, 12 heads, 12 layers, MLP
 * 3072, ~86M parameters) with seeded random weights, generated into a temp dir by
 * scripts/build-vit-model.ts; `--size tiny` uses the test model instead. Each case stops at
 * `--images` images or `--case-seconds` of measuring, whichever comes first.
 *
 * Flags: --size base|tiny (default base), --images N (default 48 base, 2000 tiny),
 * --rounds N (default 3), --case-seconds S (default 40), --batch N (pool batchSizeMax,
 * default 8), --model-dir DIR (reuse a built model), --json FILE.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadConfig } from '../config/index.js';
import { createModerator, loadModelDir, preprocessImage } from '../moderation/index.js';
import type { ModelSpec, Moderator } from '../moderation/index.js';
import { buildVitModel, VIT_BASE, VIT_TINY } from '../scripts/build-vit-model.js';
import { benchStart, percentile, positiveInt, round, writeReport } from './report.js';
import type { BenchCase } from './report.js';

interface Flags {
  size: 'base' | 'tiny';
  images: number;
  rounds: number;
  caseSeconds: number;
  batch: number;
  modelDir: string | undefined;
  json: string | undefined;
}

function flagsOf(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: 'base' },
      images: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      'case-seconds': { type: 'string', default: '40' },
      batch: { type: 'string', default: '8' },
      'model-dir': { type: 'string' },
      json: { type: 'string' },
    },
  });
  if (values.size !== 'base' && values.size !== 'tiny') {
    throw new Error('--size must be base or tiny');
  }
  return {
    size: values.size,
    images: positiveInt('images', values.images ?? (values.size === 'base' ? '48' : '2000')),
    rounds: positiveInt('rounds', values.rounds),
    caseSeconds: positiveInt('case-seconds', values['case-seconds']),
    batch: positiveInt('batch', values.batch),
    modelDir: values['model-dir'],
    json: values.json,
  };
}

/** Product-photo-like JPEGs: smooth colour fields (noise upscaled), 640×480, seeded. */
async function makeImages(count: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let s = 12345;
  for (let k = 0; k < count; k++) {
    const small = Buffer.alloc(40 * 30 * 3);
    for (let i = 0; i < small.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      small[i] = s >>> 24;
    }
    const jpeg = await sharp(small, { raw: { width: 40, height: 30, channels: 3 } })
      .resize(640, 480, { kernel: 'cubic' })
      .jpeg({ quality: 85 })
      .toBuffer();
    out.push(jpeg);
  }
  return out;
}

/** One case, measured a slice at a time; the totals add up across rounds. */
interface Runner {
  readonly name: string;
  readonly extra: Record<string, unknown>;
  /** Images in the untimed first slice. */
  readonly warmUp: number;
  /** Smallest useful slice: a pool slice smaller than its loop would leave workers idle. */
  readonly sliceMin: number;
  /** Images still to measure. */
  remaining: number;
  elapsedMs: number;
  latencies: number[];
  slice: (n: number) => Promise<void>;
}

function runner(
  name: string,
  total: number,
  warmUp: number,
  sliceMin: number,
  extra: Record<string, unknown>,
): Runner {
  const slice = () => Promise.resolve();
  return { name, extra, warmUp, sliceMin, remaining: total, elapsedMs: 0, latencies: [], slice };
}

function openSession(model: ModelSpec, intra: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model.modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: intra,
    interOpNumThreads: 1,
  });
}

/** A bare session on this thread, fed prepared tensors `batch` at a time. */
function bareRunner(
  session: ort.InferenceSession,
  model: ModelSpec,
  tensors: Float32Array[],
  f: Flags,
  intra: number,
  batch: number,
): Runner {
  const { width, height } = model.preprocess;
  const per = 3 * width * height;
  const input = new Float32Array(per * batch);
  let next = 0;
  const extra = { intra_op_threads: intra, batch };
  const r = runner(`bare intra=${intra} batch=${batch}`, f.images, batch, batch, extra);
  r.slice = async (count) => {
    const started = performance.now();
    for (let done = 0; done < count;) {
      const n = Math.min(batch, count - done);
      for (let i = 0; i < n; i++) input.set(tensors[next++ % tensors.length], i * per);
      const data = input.subarray(0, n * per);
      const t0 = performance.now();
      await session.run({ pixel_values: new ort.Tensor('float32', data, [n, 3, height, width]) });
      const ms = performance.now() - t0;
      for (let i = 0; i < n; i++) r.latencies.push(ms);
      done += n;
    }
    r.elapsedMs += performance.now() - started;
  };
  return r;
}

function openPool(modelDir: string, f: Flags, threads: number, intra: number): Promise<Moderator> {
  const moderation = {
    modelDir,
    threads,
    intraOpThreads: intra,
    batchSizeMax: f.batch,
    batchWaitMs: 2,
    queueMax: 4 * threads * f.batch,
    taskTimeoutMs: 600_000,
  };
  return createModerator(loadConfig({ env: {}, overrides: { moderation } }).moderation);
}

/** The pool end to end from JPEG bytes, in a closed loop with `outstanding` images open. */
function poolRunner(m: Moderator, images: Buffer[], total: number, outstanding: number): Runner {
  const { threads, intraOpThreads, batchSizeMax } = m.settings;
  const name =
    `pool threads=${threads} intra=${intraOpThreads} batch<=${batchSizeMax} ` +
    `outstanding=${outstanding}`;
  const extra = { threads, intra_op_threads: intraOpThreads, runs: 0, mean_batch: 0 };
  const r = runner(name, total, Math.min(outstanding, threads * batchSizeMax), outstanding, extra);
  let next = 0;
  let runs = 0;
  let imagesRun = 0;
  r.slice = async (count) => {
    if (r.latencies.length === 0) runs = imagesRun = 0; // the first timed slice
    const before = m.stats();
    const started = performance.now();
    let submitted = 0;
    const loop = async () => {
      while (submitted < count) {
        submitted++;
        const img = images[next++ % images.length];
        r.latencies.push((await m.classify(img, { contentType: 'image/jpeg' })).ms);
      }
    };
    await Promise.all(Array.from({ length: Math.min(outstanding, count) }, loop));
    r.elapsedMs += performance.now() - started;
    const after = m.stats();
    runs += after.runs - before.runs;
    imagesRun += after.imagesRun - before.imagesRun;
    extra.runs = runs;
    extra.mean_batch = round(imagesRun / Math.max(1, runs), 2);
  };
  return r;
}

/** Interleaves the runners' slices round by round; a case past its time budget sits out. */
async function measure(runners: Runner[], f: Flags): Promise<void> {
  for (let round_ = 0; round_ < f.rounds; round_++) {
    for (const r of runners) {
      const even = Math.ceil(r.remaining / (f.rounds - round_));
      const share = Math.min(r.remaining, Math.max(even, r.sliceMin));
      if (share === 0 || r.elapsedMs > f.caseSeconds * 1000) continue;
      await r.slice(share);
      r.remaining -= share;
      process.stdout.write(`round ${round_ + 1}: ${r.name}: ${r.latencies.length} images\n`);
    }
  }
}

function caseOf(r: Runner): BenchCase {
  const images = r.latencies.length;
  return {
    name: r.name,
    throughput_per_s: round((images / r.elapsedMs) * 1000),
    latency_ms: {
      p50: round(percentile(r.latencies, 50)),
      p99: round(percentile(r.latencies, 99)),
    },
    oversold: null, // image moderation sells nothing
    images,
    ...r.extra,
  };
}

async function benchModel(dir: string, f: Flags, cores: number): Promise<BenchCase[]> {
  const model = loadModelDir(dir);
  const images = await makeImages(16);
  const prepare = (img: Buffer) => preprocessImage(img, model.preprocess, 25_000_000);
  const tensors = await Promise.all(images.map(prepare));
  const intras = [...new Set([1, cores])];
  const sessions = await Promise.all(intras.map((intra) => openSession(model, intra)));
  const pools = await Promise.all(intras.map((t) => openPool(dir, f, t, Math.floor(cores / t))));
  try {
    const runners: Runner[] = [];
    for (const [k, intra] of intras.entries()) {
      for (const batch of [1, 8]) {
        runners.push(bareRunner(sessions[k], model, tensors, f, intra, batch));
      }
    }
    for (const m of pools) {
      runners.push(poolRunner(m, images, f.images, 2 * m.settings.threads * f.batch));
    }
    runners.push(poolRunner(pools[0], images, Math.min(16, f.images), 1)); // idle-pool latency
    for (const r of runners) {
      await r.slice(r.warmUp);
      r.latencies = [];
      r.elapsedMs = 0;
    }
    await measure(runners, f);
    return runners.map(caseOf);
  } finally {
    for (const s of sessions) await s.release();
    for (const m of pools) await m.close();
  }
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('moderation');
  const f = flagsOf(argv);
  const cores = availableParallelism();
  const tmp = f.modelDir ? null : mkdtempSync(join(tmpdir(), 'stockade-bench-vit-'));
  try {
    const dir = f.modelDir ? resolve(f.modelDir) : tmp!;
    if (!f.modelDir) {
      const t0 = performance.now();
      const built = buildVitModel(dir, { ...(f.size === 'base' ? VIT_BASE : VIT_TINY), seed: 7 });
      const params = built.paramCount.toLocaleString('en-US');
      const ms = Math.round(performance.now() - t0);
      process.stdout.write(`built ${built.options.name}: ${params} params in ${ms} ms\n`);
    }
    const cases = await benchModel(dir, f, cores);
    const bare = cases.filter((c) => c.name.startsWith('bare'));
    const ceiling = Math.max(...bare.map((c) => c.throughput_per_s));
    for (const c of cases) {
      c.ceiling_throughput_per_s = ceiling;
      c.ratio_to_ceiling = round(c.throughput_per_s / ceiling);
    }
    writeReport(
      {
        ...head,
        config: {
          model: loadModelDir(dir).name,
          size: f.size,
          images_per_case: f.images,
          rounds: f.rounds,
          case_seconds_max: f.caseSeconds,
          pool_batch_size_max: f.batch,
          pool_batch_wait_ms: 2,
          source_images: '16 JPEG 640x480 q85 (pool decodes them; bare cases get tensors)',
        },
        cases,
      },
      f.json,
    );
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  run(process.argv.slice(2)).catch((err: unknown) => {
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`bench failed: ${why}\n`);
    process.exit(1);
  });
}
