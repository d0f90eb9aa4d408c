import type { WindowKind } from '../../projections/metrics.js'

export const WINDOW_MS: Readonly<Record<WindowKind, number>> = { hour: 3_600_000, day: 86_400_000 }
/** Without a start, a range reaches back this many windows: the last 24 hours, or the last 30 days. */
export const DEFAULT_WINDOWS: Readonly<Record<WindowKind, number>> = { hour: 24, day: 30 }
export const MAX_WINDOWS = 1000

export type WindowRange =
  | { readonly starts: readonly string[]; readonly start: string; readonly end: string }
  /** the range holds more than MAX_WINDOWS windows */
  | { readonly tooMany: number }
  /** from is after to (which defaults to now) */
  | { readonly reversed: true }

/**
 * The window starts of a range: every UTC window that holds a moment of it, in order, empty ones included. To
 * defaults to now; from to the default number of windows before to. End is exclusive.
 */
export const windowRange = (
  window: WindowKind,
  from: string | undefined,
  to: string | undefined,
  now: Date,
): WindowRange => {
  const step = WINDOW_MS[window]
  const toMs = to === undefined ? now.getTime() : Date.parse(to)
  const fromMs = from === undefined ? toMs - (DEFAULT_WINDOWS[window] - 1) * step : Date.parse(from)
  if (fromMs > toMs) return { reversed: true }
  const first = Math.floor(fromMs / step) * step
  const last = Math.floor(toMs / step) * step
  const count = (last - first) / step + 1
  if (count > MAX_WINDOWS) return { tooMany: count }
  return {
    starts: Array.from({ length: count }, (_, i) => new Date(first + i * step).toISOString()),
    start: new Date(first).toISOString(),
    end: new Date(last + step).toISOString(),
  }
}
