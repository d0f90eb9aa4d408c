import { z } from 'zod'

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const
type Unit = keyof typeof UNIT_SECONDS

/** A lifetime as people write it, a number and s, m, h, d or w (30m, 24h, 7d), read as seconds. */
export const Lifetime = z
  .string()
  .regex(/^[1-9]\d{0,5}[smhdw]$/, 'a number and s, m, h, d or w, like 30m, 24h or 7d')
  .transform((text) => Number(text.slice(0, -1)) * UNIT_SECONDS[text.at(-1) as Unit])

/** Seconds in the largest unit that divides them: 86400 is 1d, 5400 is 90m. */
export const formatLifetime = (seconds: number): string => {
  const [unit, size] = (Object.entries(UNIT_SECONDS) as [Unit, number][])
    .reverse()
    .find(([, size]) => seconds % size === 0) ?? ['s', 1]
  return `${seconds / size}${unit}`
}

/** Why a token this long-lived may not be issued or accepted; null when it may. */
export const lifetimeBeyond = (seconds: number, maxSeconds: number): string | null =>
  seconds > maxSeconds
    ? `a token lives at most ${formatLifetime(maxSeconds)} (AUTH_MAX_TOKEN_LIFETIME); this one would live ${formatLifetime(seconds)}`
    : null
