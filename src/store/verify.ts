import { type ChainReport, ChainVerifier } from './chain.js'
import type { EventStore } from './port.js'

/** Verifies the whole ledger's hash chain, one page at a time so memory stays flat. */
export const verifyLedger = async (store: EventStore, pageSize = 1000): Promise<ChainReport> => {
  const verifier = new ChainVerifier()
  let after = 0
  for (;;) {
    const page = await store.readAll(after, pageSize)
    for (const event of page) if (!verifier.add(event)) return verifier.report()
    const last = page.at(-1)
    // a page may stop short at its byte budget: only an empty page is the end
    if (last === undefined) return verifier.report()
    after = last.position
  }
}
