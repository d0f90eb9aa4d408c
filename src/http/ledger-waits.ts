import type { StoredEvent } from '../store/port.js'

/** One waiting request: woken by an event of its stream, by its deadline, by its client leaving or by close. */
export interface LedgerWait {
  /** true once an awaited event came since the last call; false when the time is up or the wait was ended */
  next(): Promise<boolean>
  /** frees the timer and the registration; every exit calls it, more than once is harmless */
  end(): void
}

interface Waiter {
  notify(): void
  stop(): void
}

/**
 * Requests waiting for events of given types on given streams. One listener on the ledger tail feeds them
 * all (see feed): each waiter holds one timer, and is woken only by its own stream.
 */
export class LedgerWaits {
  private readonly byStream = new Map<string, Set<Waiter>>()

  constructor(private readonly types: ReadonlySet<string>) {}

  /** Hands a committed batch to the waiters of its streams. */
  readonly feed = (batch: readonly StoredEvent[]): void => {
    for (const e of batch) {
      if (!this.types.has(e.type)) continue
      const waiters = this.byStream.get(e.stream)
      if (waiters) for (const w of waiters) w.notify()
    }
  }

  /** how many requests wait now */
  get size(): number {
    let n = 0
    for (const waiters of this.byStream.values()) n += waiters.size
    return n
  }

  /** Waits on a stream for at most `ms`, until `signal` aborts; register before reading, so nothing is missed. */
  wait(stream: string, ms: number, signal?: AbortSignal): LedgerWait {
    let pending = false
    let over = false
    let wake: (() => void) | null = null
    const rouse = () => {
      const w = wake
      wake = null
      w?.()
    }
    const waiter: Waiter = {
      notify: () => {
        pending = true
        rouse()
      },
      stop: () => end(),
    }
    const timer = ms > 0 ? setTimeout(() => end(), ms) : null
    const end = () => {
      if (over) return
      over = true
      if (timer) clearTimeout(timer)
      signal?.removeEventListener('abort', end)
      const waiters = this.byStream.get(stream)
      waiters?.delete(waiter)
      if (waiters?.size === 0) this.byStream.delete(stream)
      rouse()
    }
    if (signal?.aborted || ms <= 0) end()
    else {
      signal?.addEventListener('abort', end)
      const waiters = this.byStream.get(stream) ?? new Set<Waiter>()
      waiters.add(waiter)
      this.byStream.set(stream, waiters)
    }
    return {
      next: () => {
        if (pending) {
          pending = false
          return Promise.resolve(true)
        }
        if (over) return Promise.resolve(false)
        return new Promise<boolean>((resolve) => {
          wake = () => {
            const woken = pending
            pending = false
            resolve(woken)
          }
        })
      },
      end,
    }
  }

  /** Ends every wait: each answers with what it has. */
  closeAll(): void {
    for (const waiters of [...this.byStream.values()]) for (const w of [...waiters]) w.stop()
  }
}
