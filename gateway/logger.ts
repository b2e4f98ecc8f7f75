import { pino } from 'pino';
import type { Logger } from 'pino';
import type { LogLevel } from '../config/index.js';

/**
 * The gateway's logger: JSON lines on stdout. Per-request lines are at `debug` only, and the
 * routes check the level once at startup (`GatewayContext.logRequests`), not per request.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { name: 'stockade' } });
}

export type { Logger };
