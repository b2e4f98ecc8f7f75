// Shared by the moderation tests: a tiny generated ViT in a temp dir, a settings preset and
// synthetic images made with sharp. Every test file builds its own model dir, so files can run
// in parallel without sharing state.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ModerationSettings } from '../../config/index.js';
import { buildVitModel } from '../../scripts/build-vit-model.js';
import type { BuiltVitModel, VitOptions } from '../../scripts/build-vit-model.js';

export interface TestModel extends BuiltVitModel {
  readonly cleanup: () => void;
}

export function tinyModel(options: Partial<VitOptions> = {}): TestModel {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-vit-'));
  const built = buildVitModel(dir, options);
  return { ...built, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small, fast preset: one worker, one intra-op thread, short waits. */
export function testSettings(
  modelDir: string,
  over: Partial<ModerationSettings> = {},
): ModerationSettings {
  return {
    modelDir,
    threads: 1,
    intraOpThreads: 1,
    priority: 'normal',
    queueMax: 64,
    taskTimeoutMs: 30_000,
    batchSizeMax: 8,
    batchWaitMs: 0,
    maxBytes: 1_000_000,
    maxPixels: 4_000_000,
    unsafeLabels: ['nsfw'],
    reviewThreshold: 0.5,
    blockThreshold: 0.9,
    ...over,
  };
}

/** Deterministic pixel noise: byte i is a hash of (seed, i). */
export function noiseRgb(width: number, height: number, seed = 1, channels = 3): Buffer {
  const out = Buffer.alloc(width * height * channels);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

export function rawImage(rgb: Buffer, width: number, height: number, channels: 1 | 3 | 4 = 3) {
  return sharp(rgb, { raw: { width, height, channels } });
}

export async function noiseJpeg(width: number, height: number, seed = 1): Promise<Buffer> {
  return rawImage(noiseRgb(width, height, seed), width, height)
    .jpeg({ quality: 90 })
    .toBuffer();
}

export async function noisePng(width: number, height: number, seed = 1): Promise<Buffer> {
  return rawImage(noiseRgb(width, height, seed), width, height)
    .png()
    .toBuffer();
}

export function solid(width: number, height: number, rgb: readonly number[], alpha?: number) {
  const [r, g, b] = rgb;
  const channels = alpha === undefined ? 3 : 4;
  return sharp({ create: { width, height, channels, background: { r, g, b, alpha: alpha ?? 1 } } });
}

export async function solidPng(w: number, h: number, rgb: readonly number[]): Promise<Buffer> {
  return solid(w, h, rgb).png().toBuffer();
}
