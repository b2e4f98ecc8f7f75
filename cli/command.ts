import { messageOf } from '../actors/index.js';

/**
 * What the operator commands (`stockade migrate`, `project`, `tail`) share: how they take their
 * streams and environment, how a bad flag or `--help` ends them, and how an error is put in
 * one line.
 */

export interface CommandOptions {
  /** Where errors go (default: process.stderr). */
  err?: NodeJS.WritableStream;
  /** Environment for the configuration (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Parses a command's flags with `parse`, which returns null for `--help` and throws for a bad
 * flag. Returns the parsed arguments, or the exit code when the command is over: 0 after
 * printing the usage to `out`, 2 after printing the reason and the usage to `err`.
 */
export function parseCommand<A>(
  name: string,
  usage: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
  parse: () => A | null,
): A | number {
  let args: A | null;
  try {
    args = parse();
  } catch (e) {
    err.write(`stockade ${name}: ${messageOf(e)}\n${usage}`);
    return 2;
  }
  if (args === null) {
    out.write(usage);
    return 0;
  }
  return args;
}

export { messageOf } from '../actors/index.js';
