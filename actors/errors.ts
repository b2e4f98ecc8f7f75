/** What every folder shares about errors. */

/** An error's message; for an AggregateError (a connect that tried several addresses), its first. */
export function messageOf(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return messageOf(e.errors[0]);
  return e instanceof Error ? e.message : String(e);
}
