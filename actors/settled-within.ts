/**
 * Waits for `p` to settle, but at most `ms`: true if it settled in time (fulfilled or
 * rejected), false if the time ran out first. For shutdowns that must not hang on a part that
 * never answers; the timer never keeps the process alive past the wait.
 */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
