import type { Endpoint } from 'comlink';
import type { MessagePort } from 'node:worker_threads';

type Listener = ((event: { data: unknown }) => void) | { handleEvent(event: { data: unknown }): void };

/**
 * Adapts a worker_threads MessagePort to the DOM-style endpoint Comlink expects. Comlink ships
 * the same adapter only as a deep `.mjs` import without types; this is it, typed.
 */
export function comlinkEndpoint(port: MessagePort): Endpoint {
  const wrapped = new WeakMap<Listener, (data: unknown) => void>();
  const endpoint = {
    postMessage: (message: unknown, transfer?: unknown[]) => port.postMessage(message, transfer as never),
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
