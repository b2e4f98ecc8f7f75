/**
 * The reservation lifecycle as a transition table. The actor reads this table to decide what a
 * command does to a reservation, and the tests read the same table to check the actor obeys it.
 *
 *            confirm            return
 *   held ─────────────▶ confirmed ───────▶ returned
 *     │ cancel
 *     ├──────────────▶ cancelled
 *     │ expire (timer)
 *     └──────────────▶ expired
 */
export const RESERVATION_STATES = [
  'held',
  'confirmed',
  'cancelled',
  'expired',
  'returned',
] as const;
export type ReservationState = (typeof RESERVATION_STATES)[number];

/** Numeric state codes stored in the actor's typed arrays (0 is "no such reservation"). */
export const ResState = { held: 1, confirmed: 2, cancelled: 3, expired: 4, returned: 5 } as const;

export const RESERVATION_COMMANDS = ['confirm', 'cancel', 'expire', 'return'] as const;
export type ReservationCommand = (typeof RESERVATION_COMMANDS)[number];

/**
 * What a command does in a state:
 * - `move`: the reservation moves to `to` and an event is emitted;
 * - `repeat`: the command already happened (a retry); the result is success, nothing is emitted;
 * - `ignore`: the expiry timer fired for a reservation that is no longer held; nothing happens;
 * - `reject`: the command is refused with `invalid_transition` (or `hold_expired` for a late
 * confirm).
 */
export type Transition =
  | { readonly kind: 'move'; readonly to: ReservationState }
  | { readonly kind: 'repeat' }
  | { readonly kind: 'ignore' }
  | { readonly kind: 'reject'; readonly status: 'invalid_transition' | 'hold_expired' };

const move = (to: ReservationState): Transition => ({ kind: 'move', to });
const repeat: Transition = { kind: 'repeat' };
const ignore: Transition = { kind: 'ignore' };
const reject: Transition = { kind: 'reject', status: 'invalid_transition' };
const lateConfirm: Transition = { kind: 'reject', status: 'hold_expired' };

export const TRANSITIONS: Readonly<
  Record<ReservationState, Readonly<Record<ReservationCommand, Transition>>>
> = {
  held: {
    confirm: move('confirmed'),
    cancel: move('cancelled'),
    expire: move('expired'),
    return: reject,
  },
  confirmed: { confirm: repeat, cancel: reject, expire: ignore, return: move('returned') },
  cancelled: { confirm: reject, cancel: repeat, expire: ignore, return: reject },
  expired: { confirm: lateConfirm, cancel: reject, expire: ignore, return: reject },
  returned: { confirm: reject, cancel: reject, expire: ignore, return: repeat },
};

/** The table indexed by numeric state and command, for the actor's hot path. */
export const TRANSITION_BY_CODE: readonly (readonly Transition[])[] = [
  [],
  ...RESERVATION_STATES.map((s) => RESERVATION_COMMANDS.map((c) => TRANSITIONS[s][c])),
];

export const CommandCode = { confirm: 0, cancel: 1, expire: 2, return: 3 } as const;

export function stateName(code: number): ReservationState {
  const name = RESERVATION_STATES[code - 1];
  if (!name) throw new RangeError(`no reservation state ${code}`);
  return name;
}
