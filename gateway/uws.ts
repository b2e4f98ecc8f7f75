import type * as UWS from '@trufflesuite/uws-js-unofficial';
import { loadPackage } from '../config/index.js';

let loaded: typeof UWS | null = null;

/**
 * uWebSockets.js, loaded when the first App is made: it is an optional peer dependency (a
 * native addon an embedder of the engine alone never needs), so `stockade serve` without it
 * fails at once naming the package.
 */
export function uws(): typeof UWS {
  return (loaded ??= loadPackage<typeof UWS>(
    '@trufflesuite/uws-js-unofficial',
    'The HTTP and WebSocket server (stockade serve)',
  ));
}
