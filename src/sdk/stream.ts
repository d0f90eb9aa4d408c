import { GovernanceApiError } from './errors.js'
import { SseParser } from './sse.js'
import type { VerdictStreamEvent } from './types.js'

const VERDICT_EVENTS = new Set(['VerdictIssued', 'VerdictRevoked', 'VerdictExpired'])

export interface SubscribeOptions {
  /**
   * resume after this ledger position; 0 (the default) replays the whole history. The SDK always names its
   * position (Last-Event-ID), where a stream that names none starts at the ledger head.
   */
  readonly after?: number
  /**
   * first reconnection delay; doubles on each failed attempt, with jitter. By default the delay the stream
   * asks for (its `retry:` field), 250 ms until one has been read
   */
  readonly initialBackoffMs?: number
  readonly maxBackoffMs?: number
  /** a connection silent for this long is dead (the service sends a heartbeat every 15 s) */
  readonly idleTimeoutMs?: number
  /** told each time a connection opens or drops, with the position it resumes after */
  readonly onConnectionChange?: (change: ConnectionChange) => void
}

export type ConnectionChange =
  | { readonly state: 'connected'; readonly after: number }
  | {
      readonly state: 'disconnected'
      readonly after: number
      readonly error: unknown
      readonly retryInMs: number
    }

export interface VerdictSubscription {
  /** the position of the last event handed to the handler */
  readonly lastEventId: number
  /** settles when the subscription ends: resolves after close(), rejects on a fatal error */
  readonly done: Promise<void>
  close(): Promise<void>
}

/** Exponential backoff with jitter: half fixed, half random, so reconnecting clients spread out. */
export const backoffMs = (
  attempt: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number => {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt))
  return Math.round(ceiling / 2 + (ceiling / 2) * random())
}

/** Errors that no reconnection can fix: bad resume point, no token, wrong role. */
const isFatal = (error: unknown): boolean =>
  error instanceof GovernanceApiError && error.status >= 400 && error.status < 500 && error.status !== 429

/** The caller's handler threw: the subscription stops rather than hand the event over again and again. */
class HandlerFailed extends Error {
  override readonly name = 'HandlerFailed'
}

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done)
  })

/** Where the verdict stream is and how to ask for it. */
export interface StreamSource {
  readonly url: string
  readonly fetch: typeof fetch
  readonly authorization: () => Promise<string>
}

/**
 * Follows the verdict stream (Server-Sent Events) from `after`; a dropped connection is resumed with
 * Last-Event-ID after a backoff, and an event already handed over is never handed over again.
 * The handler is awaited before the next event.
 */
export const followVerdicts = (
  source: StreamSource,
  onVerdict: (event: VerdictStreamEvent) => void | Promise<void>,
  options: SubscribeOptions = {},
): VerdictSubscription => {
  const stop = new AbortController()
  // the stream's `retry:` once read, unless the caller chose
  let initial = options.initialBackoffMs ?? 250
  const max = options.maxBackoffMs ?? 10_000
  const idleMs = options.idleTimeoutMs ?? 45_000
  let last = options.after ?? 0

  const connect = async (): Promise<void> => {
    const connection = new AbortController()
    const abort = () => connection.abort()
    stop.signal.addEventListener('abort', abort)
    let idle = setTimeout(abort, idleMs)
    try {
      const response = await source.fetch(source.url, {
        headers: {
          accept: 'text/event-stream',
          authorization: await source.authorization(),
          'last-event-id': String(last),
        },
        signal: connection.signal,
      })
      if (!response.ok) throw await GovernanceApiError.from(response)
      if (!response.body) throw new Error('the verdict stream has no body')
      options.onConnectionChange?.({ state: 'connected', after: last })
      const parser = new SseParser()
      const decoder = new TextDecoder()
      const reader = response.body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) throw new Error('the service ended the verdict stream')
        clearTimeout(idle)
        idle = setTimeout(abort, idleMs)
        const messages = parser.push(decoder.decode(value, { stream: true }))
        if (options.initialBackoffMs === undefined && parser.retryMs !== undefined) initial = parser.retryMs
        for (const message of messages) {
          if (!VERDICT_EVENTS.has(message.event)) continue
          const position = Number(message.id)
          if (!Number.isSafeInteger(position) || position <= last) continue
          const event = JSON.parse(message.data) as VerdictStreamEvent
          try {
            await onVerdict(event)
          } catch (error) {
            throw new HandlerFailed('the verdict handler failed', { cause: error })
          }
          last = position
        }
      }
    } finally {
      clearTimeout(idle)
      stop.signal.removeEventListener('abort', abort)
    }
  }

  const run = async (): Promise<void> => {
    for (let attempt = 0; !stop.signal.aborted; ) {
      const before = last
      try {
        await connect()
      } catch (error) {
        if (stop.signal.aborted) return
        if (error instanceof HandlerFailed) throw error.cause
        if (isFatal(error) || error instanceof SyntaxError) throw error
        // progress since the last attempt means the connection was good: start the backoff again
        attempt = last > before ? 0 : attempt + 1
        const retryInMs = backoffMs(attempt, initial, max)
        options.onConnectionChange?.({ state: 'disconnected', after: last, error, retryInMs })
        await wait(retryInMs, stop.signal)
      }
    }
  }

  const done = run()
  done.catch(() => {})
  return {
    get lastEventId() {
      return last
    },
    done,
    close: async () => {
      stop.abort()
      await done.catch(() => {})
    },
  }
}
