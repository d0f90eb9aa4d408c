/** How long to wait before the given attempt again (1, 2, ...): doubling from 200 ms, at most 5 s. */
export const backoffMs = (attempt: number): number =>
  Math.min(5000, 100 * 2 ** Math.min(Math.max(attempt, 1), 6))

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
