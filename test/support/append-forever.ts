/**
 * Appends to the ledger at argv[2] until killed, with 32 concurrent writers; after each acknowledged
 * append it prints one line per event, "<id> <position>", so the parent knows what was promised durable.
 */
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'

const WRITERS = 32
const file = process.argv[2]
if (!file) throw new Error('usage: append-forever <ledger file>')
const store = openSqliteEventStore({ path: file })

const writer = async (w: number): Promise<never> => {
  const stream = `writer-${w}`
  let version = (await store.readStream(stream)).length
  for (let n = 0; ; n++) {
    // one to three events per append, with the exact expected version
    const events = Array.from({ length: 1 + (n % 3) }, (_, i) => ({
      type: 'Appended',
      data: { writer: w, n, i },
      metadata: { actor: 'crash-test' },
    }))
    const result = await store.append(stream, events, version)
    version += events.length
    process.stdout.write(result.events.map((e) => `${e.id} ${e.position}\n`).join(''))
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)))
