import {
  type AppendStreamState,
  BACKWARDS,
  END,
  FORWARDS,
  type KurrentDBClient,
  type ReadStreamOptions,
  StreamNotFoundError,
} from '@kurrent/kurrentdb-client'
import { READ_BUDGET_BYTES, ReadBudget, type StoredEvent } from '../port.js'
import type { KeyRange } from './ledger-index.js'
import { fromRecorded, readFrom, toEventData } from './mapping.js'

/** A batch read: its events, and whether the ledger may hold more after them. */
export interface Page {
  readonly events: StoredEvent[]
  readonly more: boolean
}

/** What an event's data and metadata take as JSON: the client hands them over parsed, not as text. */
export const jsonLength = (event: StoredEvent): number =>
  (JSON.stringify(event.data)?.length ?? 0) + JSON.stringify(event.metadata).length

/** The one KurrentDB stream that holds the ledger, read and appended to in the port's terms. */
export class LedgerStream {
  constructor(
    private readonly client: KurrentDBClient,
    readonly name: string,
  ) {}

  /** The events with a position greater than `after`, at most `limit` and about `maxBytes` of them. */
  async after(after: number, limit: number, maxBytes = READ_BUDGET_BYTES): Promise<StoredEvent[]> {
    return (await this.page(after, limit, maxBytes)).events
  }

  /** The same, and whether more may follow: the read stopped at its count or at its budget. */
  async page(after: number, limit: number, maxBytes = READ_BUDGET_BYTES): Promise<Page> {
    if (limit < 1) return { events: [], more: false }
    return this.read(
      { fromRevision: readFrom(after), direction: FORWARDS, maxCount: limit },
      new ReadBudget(maxBytes),
    )
  }

  /** The events from `first` to `last`, both included: what one append stored, whatever its size. */
  async range({ first, last }: KeyRange): Promise<StoredEvent[]> {
    if (last < first) return []
    return (
      await this.read({ fromRevision: readFrom(first - 1), direction: FORWARDS, maxCount: last - first + 1 })
    ).events
  }

  /** The last event, or null while the ledger is empty. */
  async last(): Promise<StoredEvent | null> {
    const { events } = await this.read({ fromRevision: END, direction: BACKWARDS, maxCount: 1 })
    return events[0] ?? null
  }

  /** Appends sealed events atomically, or throws KurrentDB's WrongExpectedVersionError when the tip moved. */
  async append(events: readonly StoredEvent[], streamState: AppendStreamState): Promise<void> {
    await this.client.appendToStream(this.name, events.map(toEventData), { streamState })
  }

  /** Reads up to the options' count; with a budget, stops (cancelling the read) at the event that spends it. */
  private async read(options: ReadStreamOptions & { maxCount: number }, budget?: ReadBudget): Promise<Page> {
    const events: StoredEvent[] = []
    try {
      for await (const resolved of this.client.readStream(this.name, options)) {
        if (!resolved.event) continue
        const event = fromRecorded(resolved.event)
        events.push(event)
        if (budget && !budget.spend(jsonLength(event))) return { events, more: true }
      }
    } catch (error) {
      // an empty ledger has no stream yet
      if (error instanceof StreamNotFoundError) return { events: [], more: false }
      throw error
    }
    return { events, more: events.length === options.maxCount }
  }
}
