import { transferHandlers } from 'comlink';
import type { Endpoint, TransferHandler } from 'comlink';
import type { MessagePort } from 'node:worker_threads';

type Listener =
  ((event: { data: unknown }) => void) | { handleEvent(event: { data: unknown }): void };

/**
 * Adapts a worker_threads MessagePort to the DOM-style endpoint Comlink expects. Comlink ships
 * the same adapter only as a deep `.mjs` import without types; this is it, typed.
 */
export function comlinkEndpoint(port: MessagePort): Endpoint {
  const wrapped = new WeakMap<Listener, (data: unknown) => void>();
  const endpoint = {
    postMessage: (message: unknown, transfer?: unknown[]) =>
      port.postMessage(message, transfer as never),
    addEventListener: (_type: string, listener: Listener) => {
      const fn = (data: unknown) => {
        if (typeof listener === 'function') listener({ data });
        else listener.handleEvent({ data });
      };
      wrapped.set(listener, fn);
      port.on('message', fn);
    },
    removeEventListener: (_type: string, listener: Listener) => {
      const fn = wrapped.get(listener);
      if (!fn) return;
      port.off('message', fn);
      wrapped.delete(listener);
    },
    start: () => port.start(),
  };
  return endpoint;
}

/**
 * Comlink sends an error thrown by a remote call as its name, message and stack only; the
 * engine's callers branch on `code` (e.g. `journal_corrupt` from a shard's recovery), so the
 * error's `code` and `retriable` cross the thread too. Installed once, by whichever thread
 * loads this module first; both sides of every control port load it.
 */
function carryErrorCodes(): void {
  type Serialized = { isError: boolean; value: Record<string, unknown> };
  const original = transferHandlers.get('throw') as
    TransferHandler<{ value: unknown }, Serialized> | undefined;
  if (!original || (original as { carriesCodes?: boolean }).carriesCodes) return;
  const handler: TransferHandler<{ value: unknown }, Serialized> & { carriesCodes: boolean } = {
    carriesCodes: true,
    canHandle: (value): value is { value: unknown } => original.canHandle(value),
    serialize(thrown) {
      const [serialized, transfer] = original.serialize(thrown);
      const error = thrown.value as { code?: unknown; retriable?: unknown } | null;
      if (serialized.isError && error) {
        if (typeof error.code === 'string') serialized.value.code = error.code;
        if (typeof error.retriable === 'boolean') serialized.value.retriable = error.retriable;
      }
      return [serialized, transfer];
    },
    deserialize: (serialized) => original.deserialize(serialized),
  };
  transferHandlers.set('throw', handler);
}
carryErrorCodes();
