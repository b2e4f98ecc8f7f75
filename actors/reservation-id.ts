/**
 * A reservation's id: `<sku>:<n>`, where n is its number within the SKU (1, 2, ...). The engine
 * answers with it and the MySQL projection keys its rows by it, so both build it here.
 */
export function reservationId(sku: string, n: number): string {
  return `${sku}:${n}`;
}

/** Splits `<sku>:<n>`; null when it is not a well-formed id. */
export function parseReservationId(id: unknown): { sku: string; n: number } | null {
  if (typeof id !== 'string' || id.length > 96) return null;
  const colon = id.lastIndexOf(':');
  if (colon <= 0) return null;
  const digits = id.slice(colon + 1);
  if (!/^[1-9]\d{0,14}$/.test(digits)) return null;
  return { sku: id.slice(0, colon), n: Number(digits) };
}
