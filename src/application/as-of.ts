import { z } from 'zod'
import { type RunnerSet, type ViewsOf, viewsAsOf } from '../../projections/as-of.js'
import { DomainError } from '../domain/errors.js'
import type { EventStore } from '../store/port.js'

/** A moment of the ledger as a reader names it: a ledger position, or an ISO 8601 UTC time. */
export type Moment = number | string

const UtcTime = z.iso.datetime()
const MOMENT_HELP =
  'a ledger position (a non-negative integer) or an ISO 8601 UTC time, like 2026-01-05T08:00:00Z'

/** A moment as text (a query string, a command line): digits are a position, anything else must be a UTC time. */
export const MomentText = z
  .string()
  .max(40)
  .transform((text, context): Moment => {
    if (/^(0|[1-9][0-9]{0,14})$/.test(text)) return Number(text)
    if (UtcTime.safeParse(text).success) return text
    context.addIssue({ code: 'custom', message: MOMENT_HELP })
    return z.NEVER
  })
  .describe(MOMENT_HELP)

/** A moment in a JSON body: a position as a number, or a UTC time as a string. */
export const MomentValue = z.union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), UtcTime])

/** A moment resolved against the ledger. */
export interface LedgerMoment {
  /** the ledger position an answer as of the moment reflects */
  readonly position: number
  /** the time of the moment: the time asked for, else when the event at the position was recorded; null at 0 */
  readonly time: string | null
}

/** When the event at a position was recorded (the ledger's time never goes backwards). */
const recordedAt = async (store: EventStore, position: number): Promise<string | null> => {
  if (position <= 0) return null
  const [event] = await store.readAll(position - 1, 1)
  return event?.recordedAt ?? null
}

/** The last position recorded at or before a time, 0 when the ledger had none yet: a binary search of the ledger. */
export const positionAt = async (store: EventStore, time: string, head: number): Promise<number> => {
  const at = Date.parse(time)
  let low = 0
  let high = head
  while (low < high) {
    const middle = Math.ceil((low + high) / 2)
    const recorded = await recordedAt(store, middle)
    if (recorded !== null && Date.parse(recorded) <= at) low = middle
    else high = middle - 1
  }
  return low
}

/** A time after now names nothing the ledger holds yet: refused as invalid. */
const notInFuture = (time: string, now: Date): void => {
  if (Date.parse(time) > now.getTime())
    throw new DomainError('invalid', `${time} is in the future`, { now: now.toISOString() })
}

/**
 * Resolves a moment: a position must not be beyond the ledger's head, a time must not be in the future (both
 * refused as invalid, saying why); a time before the first event is position 0, where every read model is empty.
 */
export const resolveMoment = async (
  store: EventStore,
  moment: Moment,
  now: Date = new Date(),
): Promise<LedgerMoment> => {
  const head = (await store.head()).position
  if (typeof moment === 'number') {
    if (moment > head)
      throw new DomainError('invalid', `ledger position ${moment} is beyond the ledger's head ${head}`, {
        head,
      })
    return { position: moment, time: await recordedAt(store, moment) }
  }
  notInFuture(moment, now)
  return { position: await positionAt(store, moment, head), time: moment }
}

/** A range of the ledger named by positions, or by times: from the first event recorded at or after a time, to the last recorded at or before one. */
export interface MomentRange {
  readonly from?: Moment | undefined
  readonly to?: Moment | undefined
}

/** A range's times resolved to positions (positions stay as given); a range whose start is after its end is invalid. */
export const resolveRange = async (
  store: EventStore,
  range: MomentRange,
  now: Date = new Date(),
): Promise<{ from?: number; to?: number }> => {
  const head = (await store.head()).position
  let { from, to } = range
  if (typeof from === 'string') {
    notInFuture(from, now)
    // the first position recorded at or after the time: one after the last recorded before it
    from = (await positionAt(store, new Date(Date.parse(from) - 1).toISOString(), head)) + 1
  }
  if (typeof to === 'string') {
    notInFuture(to, now)
    to = await positionAt(store, to, head)
  }
  if (from !== undefined && to !== undefined && from > to)
    throw new DomainError(
      'invalid',
      `the range starts at position ${from}, after its end at ${to}${typeof range.from === 'string' || typeof range.to === 'string' ? ` (from ${range.from} to ${range.to})` : ''}`,
      { from, to },
    )
  return { ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) }
}

/**
 * The read models a read answers from: the runners themselves (now) when no moment is named, else every one of
 * them as of the moment, with the moment resolved. The same query code reads either.
 */
export const viewsAt = async <V extends RunnerSet<V>>(
  store: EventStore,
  runners: V,
  moment: Moment | undefined,
  now: Date = new Date(),
): Promise<{ readonly views: ViewsOf<V>; readonly moment: LedgerMoment | null }> => {
  // a runner is the view of its projection now (TypeScript does not see that through the mapped type)
  if (moment === undefined) return { views: runners as unknown as ViewsOf<V>, moment: null }
  const resolved = await resolveMoment(store, moment, now)
  return { views: await viewsAsOf(store, runners, resolved.position), moment: resolved }
}

/** The clock a read answers ages by: the moment's time as of a moment (the ledger's start: the epoch), else now. */
export const clockOf = (moment: LedgerMoment | null, now: Date = new Date()): Date =>
  moment === null ? now : new Date(moment.time ?? 0)
