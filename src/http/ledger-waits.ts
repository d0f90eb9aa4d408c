import type { StoredEvent } from '../store/port.js'

/** One waiting request: woken by an event of its stream, by its deadline, by its client leaving or by close. */
export interface LedgerWait {
  /**
   * The awaited events of its stream that came since the last call, in ledger order, as the tail handed them (no
   * read); null once the time is up or the wait was ended
   */
  next(): Promise<readonly StoredEvent[] | null>
  /** frees the timer and the registration; every exit calls it, more than once is harmless */
  end(): void
}

interface Waiter {
  notify(event: StoredEvent): void
  stop(): void
}

/**
 * Requests waiting for events of given types on given streams. One listener on the ledger tail feeds them
 * all (see feed): each waiter holds one timer, is woken only by its own stream, and is handed the events
 * themselves, so that a waiting request learns what happened without reading the ledger again.
 */
export class LedgerWaits {
  private readonly byStream = new Map<string, Set<Waiter>>()

  constructor(private readonly types: ReadonlySet<string>) {}

  /** Hands a committed batch to the waiters of its streams. */
  readonly feed = (batch: readonly StoredEvent[]): void => {
    for (const e of batch) {
      if (!this.types.has(e.type)) continue
      const waiters = this.byStream.get(e.stream)
      if (waiters) for (const w of waiters) w.notify(e)
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
    let pending: StoredEvent[] = []
    let over = false
    let wake: (() => void) | null = null
    const rouse = () => {
      const w = wake
      wake = null
      w?.()
    }
    const take = (): readonly StoredEvent[] => {
      const events = pending
      pending = []
      return events
    }
    const waiter: Waiter = {
      notify: (event) => {
        pending.push(event)
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
        if (pending.length > 0) return Promise.resolve(take())
        if (over) return Promise.resolve(null)
        return new Promise<readonly StoredEvent[] | null>((resolve) => {
          wake = () => resolve(pending.length > 0 ? take() : null)
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
