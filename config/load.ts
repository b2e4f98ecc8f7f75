import { readFileSync } from 'node:fs';
import type { FieldSpec } from './field.js';
import { configFields } from './fields.js';
import type { ConfigInput, StockadeConfig } from './types.js';

/** Raised for any configuration problem; `code` is always `config_invalid`. */
export class ConfigError extends Error {
  readonly code = 'config_invalid';
  readonly retriable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** The environment variable that names a JSON configuration file. */
export const CONFIG_FILE_ENV = 'STOCKADE_CONFIG';

export interface LoadConfigOptions {
  /**
   * Environment to read `STOCKADE_*` variables from; `process.env` by default. Pass `{}` to ignore
   * it.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Path of a JSON file; defaults to `$STOCKADE_CONFIG` when that is set. */
  file?: string;
  /** Values that win over the file and the environment (e.g. command-line flags). */
  overrides?: ConfigInput;
}

const fieldsByKey = new Map(configFields.map((f) => [f.key, f]));
const fieldsByEnv = new Map(configFields.map((f) => [f.env, f]));

function describeRange(f: FieldSpec): string {
  switch (f.kind) {
    case 'int':
      return `an integer from ${f.min} to ${f.max}`;
    case 'number':
      return `a number from ${f.min} to ${f.max}`;
    case 'bool':
      return 'true or false';
    case 'enum':
      return `one of ${f.values!.map((v) => `'${v}'`).join(', ')}`;
    case 'list':
      return 'a list of strings (comma-separated in the environment)';
    case 'string': {
      const len = `a string of ${f.min ?? 0} to ${f.max ?? 4096} characters`;
      return f.patternDoc ? `${len} (${f.patternDoc})` : len;
    }
  }
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Checks one value against its field; returns it unchanged or throws a ConfigError naming it. */
export function checkField(f: FieldSpec, value: unknown, source: string): unknown {
  const fail = (): never => {
    throw new ConfigError(
      `config.${f.key} must be ${describeRange(f)}, got ${show(value)}${source}`,
    );
  };
  switch (f.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) fail();
      if ((value as number) < f.min! || (value as number) > f.max!) fail();
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail();
      if ((value as number) < f.min! || (value as number) > f.max!) fail();
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail();
      return value;
    case 'enum':
      if (typeof value !== 'string' || !f.values!.includes(value)) fail();
      return value;
    case 'list':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0))
        fail();
      return Object.freeze([...(value as string[])]);
    case 'string': {
      if (typeof value !== 'string') fail();
      const s = value as string;
      if (s.length < (f.min ?? 0) || s.length > (f.max ?? 4096)) fail();
      if (f.pattern && !f.pattern.test(s)) fail();
      return s;
    }
  }
}

/**
 * A comma-separated list as the environment and command-line flags give it (`a, b,,c` → three
 * items); `undefined` stays undefined, so an absent flag leaves the configuration's value.
 */
export function splitList(raw: string): string[];
export function splitList(raw: string | undefined): string[] | undefined;
export function splitList(raw: string | undefined): string[] | undefined {
  return raw
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function parseEnvValue(f: FieldSpec, raw: string): unknown {
  switch (f.kind) {
    case 'int':
    case 'number': {
      const t = raw.trim();
      const ok = f.kind === 'int' ? /^-?\d+$/.test(t) : /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t);
      return ok ? Number(t) : raw;
    }
    case 'bool': {
      const t = raw.trim().toLowerCase();
      if (t === 'true' || t === '1') return true;
      if (t === 'false' || t === '0') return false;
      return raw;
    }
    case 'list':
      return splitList(raw);
    default:
      return raw;
  }
}

/** Flattens `{ engine: { shards: 2 } }` to `[['engine.shards', 2]]`, rejecting unknown keys. */
function flatten(input: unknown, source: string): [FieldSpec, unknown][] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(`configuration${source} must be an object, got ${show(input)}`);
  }
  const out: [FieldSpec, unknown][] = [];
  for (const [section, values] of Object.entries(input as Record<string, unknown>)) {
    if (values === undefined) continue;
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      throw new ConfigError(`config.${section} must be an object${source}, got ${show(values)}`);
    }
    for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
      if (value === undefined) continue;
      const key = `${section}.${name}`;
      const f = fieldsByKey.get(key);
      if (!f) throw new ConfigError(`unknown configuration key '${key}'${source}`);
      out.push([f, value]);
    }
  }
  return out;
}

/**
 * Builds the configuration from, in increasing precedence: defaults, a JSON file, `STOCKADE_*`
 * environment variables, and explicit overrides. Every value is validated; unknown keys and
 * unknown `STOCKADE_*` variables are rejected. The result is deeply frozen.
 */
export function loadConfig(options: LoadConfigOptions = {}): StockadeConfig {
  // This is the one place in Stockade that reads process.env.
  const env = options.env ?? process.env;
  const values = new Map<string, unknown>();
  for (const f of configFields) values.set(f.key, f.default);

  const file = options.file ?? env[CONFIG_FILE_ENV];
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    for (const [f, v] of flatten(parsed, ` in ${file}`))
      values.set(f.key, checkField(f, v, ` in ${file}`));
  }

  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('STOCKADE_') || name === CONFIG_FILE_ENV || raw === undefined) continue;
    const f = fieldsByEnv.get(name);
    if (!f) {
      throw new ConfigError(
        `unknown environment variable ${name}; known: ${[...fieldsByEnv.keys(), CONFIG_FILE_ENV].join(', ')}`,
      );
    }
    values.set(f.key, checkField(f, parseEnvValue(f, raw), ` (from ${name})`));
  }

  if (options.overrides) {
    for (const [f, v] of flatten(options.overrides, '')) values.set(f.key, checkField(f, v, ''));
  }
  return build(values);
}

function build(values: Map<string, unknown>): StockadeConfig {
  const root: Record<string, Record<string, unknown>> = {};
  for (const f of configFields) {
    const [section, name] = f.key.split('.') as [string, string];
    (root[section] ??= {})[name] = values.get(f.key);
  }
  for (const section of Object.values(root)) Object.freeze(section);
  return Object.freeze(root) as unknown as StockadeConfig;
}

/** Returns a copy of `base` with `overrides` applied and validated. */
export function withOverrides(base: StockadeConfig, overrides: ConfigInput): StockadeConfig {
  const values = new Map<string, unknown>();
  for (const f of configFields) {
    const [section, name] = f.key.split('.') as [string, string];
    values.set(f.key, (base as unknown as Record<string, Record<string, unknown>>)[section][name]);
  }
  for (const [f, v] of flatten(overrides, '')) values.set(f.key, checkField(f, v, ''));
  return build(values);
}
