import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker from a module next to the caller: `moduleUrl` is resolved against `baseUrl`
 * with the caller's own extension, so the built package runs `.js` workers and the test suite,
 * which runs the TypeScript sources directly, runs `.ts` workers.
 *
 * Why the bootstrap: Node 20 does not carry loader hooks registered with `--import` into worker
 * threads, so a `.ts` worker first registers tsx itself, then imports the real entry.
 */
export function spawnWorker(baseUrl: string, modulePath: string, options: WorkerOptions): Worker {
  const typescript = baseUrl.endsWith('.ts');
  const url = new URL(modulePath.replace(/\.js$/, typescript ? '.ts' : '.js'), baseUrl);
  if (!typescript) return new Worker(url, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })` +
    `.catch((err) => { setImmediate(() => { throw err; }); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
