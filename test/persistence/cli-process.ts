import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { envWithoutStockade } from './service-helpers.js';

const cli = fileURLToPath(new URL('../../cli/stockade.ts', import.meta.url));

/** How a `stockade` child process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `stockade` command run from source (tsx) as a child process of the test. */
export interface CliProcess {
  child: ChildProcess;
  pid: number;
  out: () => string;
  err: () => string;
  exit: Promise<Exit>;
  /** Resolves once `pattern` matches stdout + stderr; rejects if the process ends first. */
  waitFor: (pattern: RegExp, ms: number) => Promise<RegExpExecArray>;
}

/**
 * Starts `stockade <args>` with the test's environment minus every `STOCKADE_*` variable (so
 * the developer's `.services/env` cannot change what the test asked for), plus `env`.
 */
export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ['--import=tsx', cli, ...args], {
    env: { ...envWithoutStockade(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start stockade ${args.join(' ')}`);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const changed = (): void => listeners.forEach((l) => l());
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    changed();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    changed();
  });
  const exit = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const waitFor = (pattern: RegExp, ms: number): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no ${pattern} within ${ms} ms`)), ms);
      const check = (): void => {
        const m = pattern.exec(`${out}\n${err}`);
        if (m) finish(null, m);
      };
      function finish(e: Error | null, m?: RegExpExecArray): void {
        clearTimeout(timer);
        listeners.delete(check);
        if (e) reject(new Error(`${e.message}; stdout: ${out}; stderr: ${err}`));
        else resolve(m!);
      }
      listeners.add(check);
      void exit.then(({ code, signal }) => {
        if (listeners.has(check)) finish(new Error(`stockade exited (${code ?? signal})`));
      });
      check();
    });
  return { child, pid: child.pid, out: () => out, err: () => err, exit, waitFor };
}

/** SIGKILLs the child if it still runs (a teardown for a failed test), and waits for it. */
export async function killIfRunning(p: CliProcess): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exit;
}

/** How the child ended, or a rejection (and a SIGKILL) if it still runs after `ms`. */
export async function exitWithin(p: CliProcess, ms: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`stockade still running after ${ms} ms; stderr: ${p.err()}`));
    }, ms);
  });
  try {
    return await Promise.race([p.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}
