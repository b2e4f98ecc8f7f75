/**
 * Entry of a gateway worker thread: one uWS App on the shared port, reaching the engine on the
 * main thread through `RemoteLink`. Thin on purpose; the routes are the same code the main
 * thread's App runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { noAudit } from './ports.js';
import { GatewayApp } from './app.js';
import { RemoteCatalog } from './catalog-link.js';
import { AuditForwarder } from './audit.js';
import { createLogger } from './logger.js';
import type { GatewayWorkerData, MainToWorker, WorkerToMain } from './messages.js';
import { Metrics } from './metrics.js';
import { RemoteLink } from './remote-link.js';

const data = workerData as GatewayWorkerData;
const port = parentPort!;
const post = (msg: WorkerToMain): void => port.postMessage(msg);
const log = createLogger(data.config.log.level).child({ thread: data.thread });
const link = new RemoteLink(port);
const metrics = new Metrics();
// Audit entries go to the main thread's sink, one message per event-loop turn (audit.ts).
const forwarder = data.auditTaken
  ? new AuditForwarder(
      (entries, dropped) => post({ kind: 'audit', entries, dropped }),
      data.config.audit.bufferMax,
      new Int32Array(data.auditTaken),
    )
  : null;
const audit = forwarder ?? noAudit;
const gateway = new GatewayApp({
  config: data.config,
  link,
  metrics,
  log,
  thread: data.thread,
  audit,
  sharedLimiterModule: data.sharedLimiterModule,
});
// Products and moderation live on the main thread: this App's routes forward to it.
gateway.ctx.catalog = new RemoteCatalog(link.callCatalog, data.catalogGatesSales);
const metricsTimer = setInterval(
  () => post({ kind: 'metrics', snapshot: metrics.snapshot() }),
  1000,
);

port.on('message', (msg: MainToWorker) => {
  if (link.onMessage(msg)) return;
  if (msg.kind === 'drain') {
    gateway.stopListening();
    void gateway.ctx.whenIdle().then(() => post({ kind: 'drained' }));
  } else if (msg.kind === 'close') {
    clearInterval(metricsTimer);
    forwarder?.flush();
    post({ kind: 'metrics', snapshot: metrics.snapshot() });
    // Let uWS finish closing its sockets, then leave the loop empty so the thread exits by
    // itself: terminating a worker while uWS still polls a socket aborts the whole process
    // (node's CheckedUvLoopClose assertion).
    void gateway.closeAll().then(() =>
      setImmediate(() => {
        post({ kind: 'closed' });
        port.close();
      }),
    );
  }
});

gateway.listen(data.config.gateway.host, data.port, data.exclusive).then(
  (p) => post({ kind: 'listening', port: p, error: null }),
  (err: Error) => post({ kind: 'listening', port: 0, error: err.message }),
);
