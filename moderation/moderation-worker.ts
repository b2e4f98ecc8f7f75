/**
 * Piscina worker entry. Piscina awaits the default export before it marks the worker ready, so
 * the session is opened exactly once per worker, at start. A failure to open it is kept and
 * returned to every task as `init_failed` instead of thrown: a throwing worker would exit, and
 * piscina would start another one that fails the same way, in a loop.
 */
import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import { Classifier } from './classifier.js';
import { isModerationError } from './errors.js';
import type { InitFailedReply, Reply, Task, WorkerInit } from './messages.js';
import { TaskKind } from './messages.js';

async function start(init: WorkerInit): Promise<(task: Task) => Promise<Reply>> {
  // Background work: on Linux the nice value is per thread, so this lowers this worker thread
  // only, and the session's intra-op threads, created below, inherit it. The purchase path's
  // threads keep their priority and take the CPU back the moment they need it.
  if (init.niceness > 0) {
    try {
      setPriority(0, init.niceness);
    } catch {
      // Not fatal: some platforms refuse; moderation then runs at normal priority.
    }
  }
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
