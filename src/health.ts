import type { Logger } from 'pino'
import type { Subscription } from './store/port.js'

/**
 * What keeps the service from answering as if all were well: each failing part with its reason, and probes
 * asked afresh at every question. While anything is wrong, /ready says 503 and the gate stays closed.
 */
export class Health {
  private readonly faults = new Map<string, string>()
  private readonly probes = new Map<string, () => string | null>()

  fault(part: string, reason: string): void {
    this.faults.set(part, reason)
  }

  recovered(part: string): void {
    this.faults.delete(part)
  }

  /** A check asked at every question: what it returns, when not null, is a fault of `part`. */
  probe(part: string, check: () => string | null): void {
    this.probes.set(part, check)
  }

  /** Why `part` has stopped, or null while it runs. */
  faultOf(part: string): string | null {
    const reason = this.faults.get(part)
    return reason === undefined ? null : `${part}: ${reason}`
  }

  /** Every part that is wrong now, with why. */
  problems(): Array<{ readonly part: string; readonly reason: string }> {
    const found = [...this.faults].map(([part, reason]) => ({ part, reason }))
    for (const [part, check] of this.probes) {
      const reason = check()
      if (reason !== null) found.push({ part, reason })
    }
    return found
  }

  /** Why the service cannot vouch for its answers now, in one line; null when all is well. */
  reason(): string | null {
    const problems = this.problems()
    return problems.length === 0 ? null : problems.map((p) => `${p.part}: ${p.reason}`).join('; ')
  }
}

/** A ledger consumer the supervisor keeps running. */
export interface Consumer {
  readonly name: string
  /** Catches up from its durable state and follows the ledger; rejects when it cannot. */
  start(): Promise<Subscription>
}

export interface SupervisorOptions {
  readonly health: Health
  readonly log: Logger
  /** how long a consumer may keep failing before the process gives up */
  readonly giveUpAfterMs: number
  /** called once when a consumer cannot go on: the process should stop for its supervisor to restart it */
  readonly onFatal: (reason: string) => void
}

const FIRST_RETRY_MS = 250
const LONGEST_RETRY_MS = 4_000

/** SQLite's answers for a file that is not (or no longer) a database: retrying cannot help. */
const PERMANENT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_READONLY_DBMOVED'])

const codeOf = (error: unknown): unknown => (error as { code?: unknown } | null)?.code
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Keeps the ledger's consumers running: a consumer that stops is a fault (the gate closes, /ready says why)
 * and is started again with backoff; one that keeps failing past `giveUpAfterMs`, or fails in a way retrying
 * cannot mend, is fatal.
 */
export class Supervisor {
  private readonly running = new Set<Subscription>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private closed = false

  constructor(private readonly options: SupervisorOptions) {}

  /** Watches a consumer already started. */
  watch(consumer: Consumer, subscription: Subscription): void {
    this.follow(consumer, subscription, null)
  }

  async close(): Promise<void> {
    this.closed = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    await Promise.allSettled([...this.running].map((s) => s.close()))
  }

  /** A consumer that fails again within `giveUpAfterMs` of its restart is still failing since the first time. */
  private follow(consumer: Consumer, subscription: Subscription, failingSince: number | null): void {
    const startedAt = Date.now()
    this.running.add(subscription)
    subscription.done.then(
      () => this.running.delete(subscription),
      (error: unknown) => {
        this.running.delete(subscription)
        const now = Date.now()
        const stillFailing = failingSince !== null && now - startedAt < this.options.giveUpAfterMs
        this.failed(consumer, error, stillFailing ? failingSince : now, 0)
      },
    )
  }

  private failed(consumer: Consumer, error: unknown, failingSince: number, attempt: number): void {
    if (this.closed) return
    const { health, log, giveUpAfterMs, onFatal } = this.options
    const reason = `stopped: ${messageOf(error)}`
    health.fault(consumer.name, reason)
    log.error({ err: error, consumer: consumer.name, attempt }, 'a ledger consumer stopped')
    if (PERMANENT_CODES.has(String(codeOf(error))) || Date.now() - failingSince >= giveUpAfterMs) {
      this.closed = true
      onFatal(`${consumer.name} ${reason}`)
      return
    }
    const delay = Math.min(LONGEST_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt)
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (this.closed) return
      consumer.start().then(
        (subscription) => {
          if (this.closed) {
            void subscription.close()
            return
          }
          health.recovered(consumer.name)
          log.warn({ consumer: consumer.name, attempt: attempt + 1 }, 'a ledger consumer recovered')
          this.follow(consumer, subscription, failingSince)
        },
        (next: unknown) => this.failed(consumer, next, failingSince, attempt + 1),
      )
    }, delay)
    this.timers.add(timer)
  }
}
