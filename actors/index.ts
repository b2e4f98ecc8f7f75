/** The SKU actor, the shard that hosts actors, and the wire codec between engine and shards. */
export { SkuActor } from './sku-actor.js';
export { CounterMove, moveCounters } from './counters.js';
export type { CounterMoveCode, StockCounters } from './counters.js';
export { Shard } from './shard.js';
export type { ShardOptions, ControlResult } from './shard.js';
export { BatchWriter, Op, RESULT_STRIDE } from './codec.js';
export type { OpCode } from './codec.js';
export { STATUS_NAMES, Status, INVALID_FIELDS, InvalidFieldIndex } from './status.js';
export type { StatusName, InvalidField } from './status.js';
export {
  TRANSITIONS,
  RESERVATION_STATES,
  RESERVATION_COMMANDS,
  ResState,
  stateName,
} from './lifecycle.js';
export type { ReservationState, ReservationCommand, Transition } from './lifecycle.js';
export { CollectingEventLog, nullEventLog } from './event-log.js';
export {
  BinaryEventLog,
  visitEvents,
  decodeEvents,
  EventType,
  EventFormatError,
  EVENT_FORMAT_VERSION,
} from './event-codec.js';
export type { EventVisitor } from './event-codec.js';
export type { EventLog } from './event-log.js';
export { TimerWheel } from './timer-wheel.js';
export { ByteMap, hashBytes } from './byte-map.js';
export { spawnWorker } from './spawn-worker.js';
export { settledWithin } from './settled-within.js';
export { ERROR_CATALOGUE, StockadeError, isErrorCode, messageOf } from './errors.js';
export type { CodeInfo, ErrorCode } from './errors.js';
export { comlinkEndpoint } from './comlink-endpoint.js';
export { ManualClock, systemClock, clockFromSpec } from './clock.js';
export type { Clock, ClockSpec } from './clock.js';
export * from './validate.js';
export type * from './types.js';
export { reservationId, parseReservationId } from './reservation-id.js';
