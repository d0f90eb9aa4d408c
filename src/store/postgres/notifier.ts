import pg from 'pg'
import { CHANNEL } from './schema.js'

/** How long to wait before listening again after the connection broke; feeds poll meanwhile. */
const RECONNECT_MS = 1000

/**
 * Listens, on a connection of its own, for the commits of every writer to one schema (this process or
 * another) and calls `onCommit`. A lost connection is re-opened; feeds never depend on it, they also poll.
 */
export class Notifier {
  private client: pg.Client | null = null
  private stopped = false
  private retry: NodeJS.Timeout | null = null
  /** the latest attempt to connect and listen */
  private listening: Promise<void>

  constructor(
    private readonly url: string,
    private readonly schema: string,
    private readonly onCommit: () => void,
  ) {
    this.listening = this.listen()
  }

  async close(): Promise<void> {
    this.stopped = true
    if (this.retry) clearTimeout(this.retry)
    await this.listening
    await this.client?.end().catch(() => {})
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url })
    this.client = client
    client.on('notification', (message) => {
      if (message.payload === this.schema) this.onCommit()
    })
    client.on('error', () => this.reconnect(client))
    client.on('end', () => this.reconnect(client))
    try {
      await client.connect()
      await client.query(`LISTEN ${pg.escapeIdentifier(CHANNEL)}`)
      // commits made while we were not listening: let the feeds look
      this.onCommit()
    } catch {
      this.reconnect(client)
    }
  }

  private reconnect(broken: pg.Client): void {
    if (this.stopped || this.client !== broken || this.retry) return
    this.client = null
    broken.end().catch(() => {})
    this.retry = setTimeout(() => {
      this.retry = null
      if (!this.stopped) this.listening = this.listen()
    }, RECONNECT_MS)
    this.retry.unref()
  }
}
