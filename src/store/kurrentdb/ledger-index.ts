// What one process knows of the ledger stream: its tip, where each stream's events are, and what each idempotency
// key appended. Pure: it is fed the ledger's events in order, by the adapter's reads and by its own appends.
import type { Known, PendingAppend, Tip } from '../append-plan.js'
import { GENESIS_HASH, type StoredEvent } from '../port.js'

/** The positions one idempotency key appended: its call's events are contiguous. */
export interface KeyRange {
  readonly first: number
  readonly last: number
}

/** A run of consecutive positions, read from the ledger stream in one request. */
export interface PositionRun {
  readonly first: number
  readonly count: number
}

export class LedgerIndex {
  private tipNow: Tip = { position: 0, hash: GENESIS_HASH, recordedAt: '' }
  /** each stream's positions in version order: version n is at index n - 1 */
  private readonly streams = new Map<string, number[]>()
  private readonly keys = new Map<string, { first: number; last: number }>()

  get tip(): Tip {
    return this.tipNow
  }

  /**
   * Takes the next events in position order; those already taken are skipped. It follows the ledger as it is: past
   * a gap (a truncated ledger stream) too, so the store still opens and `verify` names the gap.
   */
  add(events: readonly StoredEvent[]): void {
    for (const event of events) {
      if (event.position <= this.tipNow.position) continue
      const positions = this.streams.get(event.stream)
      if (positions) positions.push(event.position)
      else this.streams.set(event.stream, [event.position])
      const key = event.metadata.idempotencyKey
      if (typeof key === 'string') {
        const range = this.keys.get(key)
        // the first call under a key is the one it stands for
        if (range === undefined) this.keys.set(key, { first: event.position, last: event.position })
        else if (range.last === event.position - 1) range.last = event.position
      }
      this.tipNow = { position: event.position, hash: event.hash, recordedAt: event.recordedAt }
    }
  }

  /** The stream's current version: 0 while it has no event. */
  version(stream: string): number {
    return this.streams.get(stream)?.length ?? 0
  }

  /** The positions of the stream's events from a version on. */
  positions(stream: string, fromVersion = 1): number[] {
    return (this.streams.get(stream) ?? []).slice(Math.max(0, fromVersion - 1))
  }

  keyRange(key: string): KeyRange | undefined {
    const range = this.keys.get(key)
    return range && { ...range }
  }

  /**
   * What a group commit plans against, taken at one instant: the tip, the versions of its streams, and where its
   * keys already stored are. The plan's ledger append expects this tip, so a snapshot gone stale only conflicts.
   */
  snapshot(calls: readonly PendingAppend[]): Snapshot {
    const versions = new Map<string, number>()
    const keys = new Map<string, KeyRange>()
    for (const call of calls) {
      for (const write of call.writes) versions.set(write.stream, this.version(write.stream))
      const range = call.key === null ? undefined : this.keyRange(call.key)
      if (call.key !== null && range) keys.set(call.key, range)
    }
    return { tip: this.tipNow, versions, keys }
  }
}

export interface Snapshot {
  readonly tip: Tip
  readonly versions: ReadonlyMap<string, number>
  readonly keys: ReadonlyMap<string, KeyRange>
}

/** The snapshot with its keys' events, read from the ledger, as the planner takes it. */
export const knownOf = (snapshot: Snapshot, stored: ReadonlyMap<string, readonly StoredEvent[]>): Known => ({
  tip: snapshot.tip,
  versions: snapshot.versions,
  keys: stored,
})

/** Groups ascending positions into runs of consecutive ones. */
export const runsOf = (positions: readonly number[]): PositionRun[] => {
  const runs: { first: number; count: number }[] = []
  for (const position of positions) {
    const last = runs.at(-1)
    if (last && last.first + last.count === position) last.count += 1
    else runs.push({ first: position, count: 1 })
  }
  return runs
}
