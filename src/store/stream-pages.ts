import type { EventStore, StoredEvent } from './port.js'

/** Events a page of a stream holds at most; READ_BUDGET_BYTES bounds their size. */
const STREAM_PAGE = 1000

/** A stream's events from a version on, a page at a time: a long stream is never held whole. */
export async function* streamPages(
  store: EventStore,
  stream: string,
  fromVersion = 1,
): AsyncGenerator<readonly StoredEvent[]> {
  for (let from = fromVersion; ; ) {
    const page = await store.readStream(stream, from, STREAM_PAGE)
    const last = page.at(-1)
    if (last === undefined) return
    yield page
    from = last.streamVersion + 1
  }
}

/** The last event of a stream, read page by page; undefined for an empty stream. */
export const lastOf = async (store: EventStore, stream: string): Promise<StoredEvent | undefined> => {
  let last: StoredEvent | undefined
  for await (const page of streamPages(store, stream)) last = page.at(-1)
  return last
}
