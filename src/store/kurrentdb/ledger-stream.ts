import {
  type AppendStreamState,
  BACKWARDS,
  END,
  FORWARDS,
  type KurrentDBClient,
  type ReadStreamOptions,
  StreamNotFoundError,
} from '@kurrent/kurrentdb-client'
import type { StoredEvent } from '../port.js'
import type { KeyRange } from './ledger-index.js'
import { fromRecorded, readFrom, toEventData } from './mapping.js'

/** The one KurrentDB stream that holds the ledger, read and appended to in the port's terms. */
export class LedgerStream {
  constructor(
    private readonly client: KurrentDBClient,
    readonly name: string,
  ) {}

  /** The events with a position greater than `after`, at most `limit` of them. */
  after(after: number, limit: number): Promise<StoredEvent[]> {
    if (limit < 1) return Promise.resolve([])
    return this.read({ fromRevision: readFrom(after), direction: FORWARDS, maxCount: limit })
  }

  /** The events from `first` to `last`, both included. */
  range({ first, last }: KeyRange): Promise<StoredEvent[]> {
    return this.after(first - 1, last - first + 1)
  }

  /** The last event, or null while the ledger is empty. */
  async last(): Promise<StoredEvent | null> {
    const [last] = await this.read({ fromRevision: END, direction: BACKWARDS, maxCount: 1 })
    return last ?? null
  }

  /** Appends sealed events atomically, or throws KurrentDB's WrongExpectedVersionError when the tip moved. */
  async append(events: readonly StoredEvent[], streamState: AppendStreamState): Promise<void> {
    await this.client.appendToStream(this.name, events.map(toEventData), { streamState })
  }

  private async read(options: ReadStreamOptions): Promise<StoredEvent[]> {
    const events: StoredEvent[] = []
    try {
      for await (const resolved of this.client.readStream(this.name, options)) {
        if (resolved.event) events.push(fromRecorded(resolved.event))
      }
    } catch (error) {
      // an empty ledger has no stream yet
      if (error instanceof StreamNotFoundError) return []
      throw error
    }
    return events
  }
}
