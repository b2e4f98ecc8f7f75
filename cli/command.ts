import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { messageOf } from '../actors/index.js';
import { splitList } from '../config/index.js';
import type { ConfigInput } from '../config/index.js';

/**
 * What the commands (`stockade serve`, `migrate`, `project`, `tail`) share: the flags several of
 * them take, defined once with the configuration key each sets; how argv becomes flag values
 * and configuration overrides; and, for the operator commands, how a bad flag or `--help` ends
 * them and how an error is put in one line.
 */

export interface CommandOptions {
  /** Where errors go (default: process.stderr). */
  err?: NodeJS.WritableStream;
  /** Environment for the configuration (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A flag value as a number when it looks like one, else as given (config names the error). */
export function numberOrRaw(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  return /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/**
 * A flag that more than one command takes: its `parseArgs` definition and the configuration
 * key its value overrides (`section` null: `--config`, which names the file instead), after
 * `value` turned the text into what the key holds.
 */
interface SharedFlag {
  readonly option: { readonly type: 'string' };
  readonly section: keyof ConfigInput | null;
  readonly key: string;
  readonly value?: (raw: string) => unknown;
}

const STRING = { type: 'string' } as const;

/**
 * The flags several commands take. A command lists the ones it takes (not every command takes
 * every one: `migrate` has no journal, `tail` no `--config`), in the order their configuration
 * sections are built, which is the order config/ reports two bad values in.
 */
export const SHARED_FLAGS = {
  config: { option: STRING, section: null, key: '' },
  'mysql-url': { option: STRING, section: 'mysql', key: 'url' },
  shards: { option: STRING, section: 'engine', key: 'shards', value: numberOrRaw },
  journal: { option: STRING, section: 'journal', key: 'kind' },
  'data-dir': { option: STRING, section: 'journal', key: 'dir' },
  'kafka-brokers': { option: STRING, section: 'kafka', key: 'brokers', value: splitList },
  'kafka-topic': { option: STRING, section: 'kafka', key: 'topic' },
} as const satisfies Record<string, SharedFlag>;

export type SharedFlagName = keyof typeof SHARED_FLAGS;

/** Every command takes `--help` (`-h`). */
const HELP = { help: { type: 'boolean', short: 'h', default: false } } as const;

export interface FlagSpec<O extends OptionsConfig, S extends SharedFlagName> {
  /** The shared flags the command takes (see `SHARED_FLAGS` for the order). */
  readonly shared: readonly S[];
  /** The command's own flags, as `parseArgs` options. */
  readonly own: O;
  /** Positional arguments parse instead of failing (`serve` refuses them in its own words). */
  readonly positionals?: boolean;
}

type OptionsOf<O, S extends SharedFlagName> = O & {
  [K in S]: (typeof SHARED_FLAGS)[K]['option'];
} & typeof HELP;

/** What `parseArgs` types the values of `options` as (strict: no unknown flags). */
type FlagValues<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ strict: true; options: O }>
>['values'];

export interface ParsedFlags<O extends OptionsConfig, S extends SharedFlagName> {
  readonly values: FlagValues<OptionsOf<O, S>>;
  readonly positionals: string[];
  /** `--config FILE`, when the command takes it and it was given. */
  readonly configFile: string | undefined;
  /** The shared flags as configuration overrides; an absent flag leaves its key undefined. */
  readonly configInput: ConfigInput;
}

/**
 * Parses `argv` into the command's flag values and the configuration overrides its shared
 * flags give. Returns null for `--help`; throws `parseArgs`'s error (code `ERR_PARSE_ARGS_*`)
 * for an unknown flag, a missing value or, unless `positionals`, a positional argument.
 */
export function parseFlags<const O extends OptionsConfig, const S extends SharedFlagName>(
  argv: string[],
  spec: FlagSpec<O, S>,
): ParsedFlags<O, S> | null {
  const options: OptionsConfig = { ...spec.own };
  for (const name of spec.shared) options[name] = SHARED_FLAGS[name].option;
  options.help = HELP.help;
  const parsed = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: spec.positionals ?? false,
    options,
  });
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return null;
  let configFile: string | undefined;
  const input: Record<string, Record<string, unknown>> = {};
  for (const name of spec.shared) {
    const flag: SharedFlag = SHARED_FLAGS[name];
    const raw = values[name] as string | undefined;
    if (flag.section === null) {
      configFile = raw;
      continue;
    }
    const value = raw !== undefined && flag.value ? flag.value(raw) : raw;
    (input[flag.section] ??= {})[flag.key] = value;
  }
  return {
    values: parsed.values as FlagValues<OptionsOf<O, S>>,
    positionals: parsed.positionals,
    configFile,
    configInput: input,
  };
}

/** An operator command's flags, where its output goes, and how its arguments are made. */
export interface CommandSpec<O extends OptionsConfig, S extends SharedFlagName, A> extends FlagSpec<
  O,
  S
> {
  readonly name: string;
  readonly usage: string;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
  /** The command's arguments from its flags; throws for a bad value (the message is shown). */
  readonly build: (flags: ParsedFlags<O, S>) => A;
}

/**
 * Parses an operator command's flags (`parseFlags`) and builds its arguments. Returns them, or
 * the exit code when the command is over: 0 after printing the usage to `out` for `--help`, 2
 * after printing the reason and the usage to `err` for a bad flag or value.
 */
export function parseCommand<const O extends OptionsConfig, const S extends SharedFlagName, A>(
  argv: string[],
  command: CommandSpec<O, S, A>,
): A | number {
  let built: { args: A } | null = null;
  try {
    const flags = parseFlags(argv, command);
    if (flags !== null) built = { args: command.build(flags) };
  } catch (e) {
    command.err.write(`stockade ${command.name}: ${messageOf(e)}\n${command.usage}`);
    return 2;
  }
  if (built === null) {
    command.out.write(command.usage);
    return 0;
  }
  return built.args;
}

export { messageOf } from '../actors/index.js';
