/**
 * Piscina worker entry. Piscina awaits the default export before it marks the worker ready, so
 * the session is opened exactly once per worker, at start. A failure to open it is kept and
 * returned to every task as `init_failed` instead of thrown: a throwing worker would exit, and
 * piscina would start another one that fails the same way, in a loop.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import { Classifier } from './classifier.js';
import { isModerationError } from './errors.js';
import type { InitFailedReply, Reply, Task, WorkerInit } from './messages.js';
import { TaskKind } from './messages.js';

/**
 * Moderation is background work: it must take no CPU a sale wants. On Linux scheduling policy
 * and nice value are per thread, so this changes this worker thread only, and the session's
 * intra-op threads, created after it, inherit it; the gateway and shard threads keep theirs.
 * `idle` is SCHED_IDLE: the kernel runs these threads only when nothing else is runnable and
 * preempts them at once when a purchase-path thread wakes (nice 19 alone still let a busy model
 * take a quarter of the purchase throughput here). Node has no binding for
 * sched_setscheduler, so util-linux's `chrt` sets it on this thread's id; without `chrt` (or
 * off Linux) the worker falls back to nice 19.
 */
function lowerPriority(priority: WorkerInit['priority']): void {
  if (priority === 'normal') return;
  if (priority === 'idle' && process.platform === 'linux') {
    try {
      const tid = readlinkSync('/proc/thread-self').split('/').pop()!;
      execFileSync('chrt', ['--idle', '--pid', '0', tid], { stdio: 'ignore', timeout: 5000 });
      return;
    } catch {
      // No chrt: fall back to nice.
    }
  }
  try {
    setPriority(0, 19);
  } catch {
    // Not fatal: moderation then runs at normal priority.
  }
}

async function start(init: WorkerInit): Promise<(task: Task) => Promise<Reply>> {
  lowerPriority(init.priority);
  let classifier: Classifier;
  try {
    classifier = await Classifier.open(init);
  } catch (err) {
    const failed: InitFailedReply = {
      kind: 'init_failed',
      code: isModerationError(err) ? err.code : 'model_invalid',
      message: (err as Error)?.message ?? String(err),
    };
    return () => Promise.resolve(failed);
  }
  return (task: Task): Promise<Reply> => {
    if (task.kind === TaskKind.ping) {
      return Promise.resolve({ kind: 'ready', inputShape: classifier.inputShape });
    }
    return classifier.classifyBatch(task);
  };
}

export default start(workerData as WorkerInit);
