import {
  AnswerError,
  appendedUnder,
  type PendingAppend,
  type Plan,
  planBatch,
  settle,
} from '../append-plan.js'
import type { AnswerBatch, Answerer, StoredEvent } from '../port.js'
import { type AppendFailure, failureOf, landed } from './commit.js'
import { knownOf, type LedgerIndex } from './ledger-index.js'
import type { LedgerStream } from './ledger-stream.js'
import { expectedLedgerState } from './mapping.js'

/** Plans of one batch that lose the race for the ledger stream before it gives up. */
const MAX_CONFLICTS = 50
/** Sends of one unchanged ledger append whose answer was lost. */
const MAX_SENDS = 3

type Written =
  | { readonly ok: true }
  | { readonly ok: false; readonly failure: AppendFailure; readonly error: unknown }

const pause = (attempt: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.min(100, 2 ** attempt) * (0.5 + Math.random())))

export interface GroupCommitOptions {
  readonly ledger: LedgerStream
  readonly index: LedgerIndex
  /** brings the index up to the ledger's end */
  readonly catchUp: () => Promise<void>
  readonly clock: () => Date
  /** called after each ledger append */
  readonly onCommit: () => void
  /** the answerer of each batch, if any, and the ledger's events after a position, to bring it up to the tip */
  readonly answerer: () => Answerer | null
  readonly readAfter: (after: number, limit: number) => Promise<StoredEvent[]>
}

/**
 * Writes one batch of queued calls as one ledger append: it is planned after the tip the index knows and expects
 * that tip, so a writer in another process that got there first makes it plan again.
 */
export class GroupCommit {
  private readonly counters = { transactions: 0, appends: 0, conflicts: 0 }

  constructor(private readonly options: GroupCommitOptions) {}

  stats(): { readonly transactions: number; readonly appends: number; readonly conflicts: number } {
    return { ...this.counters }
  }

  /** Plans the calls after the ledger's tip and appends them; plans again while other writers win the race. */
  async flush(calls: readonly PendingAppend[]): Promise<void> {
    for (let conflicts = 0; ; ) {
      let plan: Plan
      let answers: AnswerBatch | null
      try {
        ;({ plan, answers } = await this.plan(calls))
      } catch (error) {
        if (error instanceof AnswerError && calls.length > 1) {
          // nothing was written: append each call alone, so only the one the rules cannot answer fails
          for (const call of calls) await this.flush([call])
          return
        }
        for (const call of calls) call.reject(error)
        return
      }
      const written: Written = plan.events.length === 0 ? { ok: true } : await this.write(plan)
      if (written.ok) {
        answers?.committed(plan.tip.position)
        return this.committed(plan, calls.length)
      }
      answers?.abandoned()
      if (written.failure === 'conflict' && conflicts < MAX_CONFLICTS) {
        conflicts += 1
        this.counters.conflicts += 1
        await pause(conflicts)
        continue
      }
      if (written.failure === 'refused' && calls.length > 1) {
        // the server refused the append and wrote nothing: append each call alone, so only the bad one fails
        for (const call of calls) await this.flush([call])
        return
      }
      const error =
        written.failure === 'conflict'
          ? new Error(
              `other writers won the ledger stream ${this.options.ledger.name} ${conflicts} times in a row`,
              {
                cause: written.error,
              },
            )
          : written.error
      for (const call of calls) call.reject(error)
      return
    }
  }

  private async plan(calls: readonly PendingAppend[]): Promise<{ plan: Plan; answers: AnswerBatch | null }> {
    const { ledger, index, catchUp, clock } = this.options
    await catchUp()
    const snapshot = index.snapshot(calls)
    const stored = new Map<string, StoredEvent[]>()
    for (const [key, range] of snapshot.keys) stored.set(key, appendedUnder(key, await ledger.range(range)))
    const answers = await this.answersAt(snapshot.tip.position)
    const known = { ...knownOf(snapshot, stored), versionOf: (stream: string) => index.version(stream) }
    try {
      return { plan: planBatch(calls, known, clock(), answers ?? undefined), answers }
    } catch (error) {
      answers?.abandoned()
      throw error
    }
  }

  /** The answerer brought up to the planned tip (another writer may have appended), with a batch opened. */
  private async answersAt(tip: number): Promise<AnswerBatch | null> {
    const answerer = this.options.answerer()
    if (!answerer) return null
    for (let at = answerer.position; at < tip; ) {
      const events = await this.options.readAfter(at, 500)
      const last = events.at(-1)
      if (!last) throw new Error(`the ledger ends at ${at}, before its tip ${tip}`)
      answerer.follow(events)
      at = last.position
    }
    return answerer.begin()
  }

  /** One ledger append expecting the planned tip; sent again unchanged while its answer is lost. */
  private async write(plan: Plan): Promise<Written> {
    const { ledger } = this.options
    const first = plan.events[0]?.position ?? 1
    const streamState = expectedLedgerState(first - 1)
    for (let send = 1; ; send++) {
      try {
        await ledger.append(plan.events, streamState)
        return { ok: true }
      } catch (error) {
        const failure = failureOf(error)
        if (failure === 'unknown' && send < MAX_SENDS) {
          await pause(send)
          continue
        }
        if (send === 1) return { ok: false, failure, error }
        // an earlier send whose answer was lost may be in the ledger though this one failed
        const found = await ledger.range({ first, last: first + plan.events.length - 1 }).then(
          (events) => landed(plan.events, events),
          () => null,
        )
        if (found === true) return { ok: true }
        // others hold the planned positions: none of our sends can land any more, so planning again is safe
        return {
          ok: false,
          failure: found === false && failure === 'conflict' ? 'conflict' : 'unknown',
          error,
        }
      }
    }
  }

  private committed(plan: Plan, appends: number): void {
    this.options.index.add(plan.events)
    settle(plan.settled)
    this.counters.appends += appends
    if (plan.events.length > 0) {
      this.counters.transactions += 1
      this.options.onCommit()
    }
  }
}
