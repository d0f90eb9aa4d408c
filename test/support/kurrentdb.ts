// KurrentDB for tests: a real server only, never a stand-in. KURRENTDB_URL names one (the docker-compose service is
// kurrentdb://127.0.0.1:2113?tls=false); without it, a kurrentplatform/kurrentdb container where a Docker engine is
// reachable (containers.ts). With neither the KurrentDB tests are skipped with one loud line, except where
// REQUIRE_SERVICES names kurrentdb: there they fail.
import { randomBytes } from 'node:crypto'
import { KurrentDBClient, StreamNotFoundError } from '@kurrent/kurrentdb-client'
import { containerFor } from './containers.js'

const PROBE_MS = 10_000

export const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('kurrentdb')

/** The connection string without its password, fit to print. */
const printable = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(an unparsable connection string)'
  }
}

const skipped = (reason: string): { skip: string } => {
  if (required()) throw new Error(`REQUIRE_SERVICES includes kurrentdb, but ${reason}`)
  console.warn(`\n!!! SKIPPED: ${reason}\n`)
  return { skip: reason }
}

/** Reads a stream that does not exist: only a server that answers says so. */
const probe = async (client: KurrentDBClient): Promise<void> => {
  try {
    for await (const _ of client.readStream(`gl-probe-${randomBytes(4).toString('hex')}`, { maxCount: 1 }))
      break
  } catch (error) {
    if (!(error instanceof StreamNotFoundError)) throw error
  }
}

/** The server to test against, or a skip reason (an error where REQUIRE_SERVICES names kurrentdb). */
export const kurrentDbServer = async (): Promise<{ url: string } | { skip: string }> => {
  let url = process.env.KURRENTDB_URL ?? ''
  if (url === '') {
    try {
      url = (await containerFor('kurrentdb')) ?? ''
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error)
      return skipped(`the KurrentDB ledger was NOT tested: ${why}`)
    }
  }
  if (url === '') {
    return skipped(
      'KURRENTDB_URL is not set: the KurrentDB ledger was NOT tested ' +
        '(set it to a KurrentDB connection string, e.g. kurrentdb://127.0.0.1:2113?tls=false)',
    )
  }
  let client: KurrentDBClient
  try {
    client = KurrentDBClient.connectionString(url)
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    return skipped(
      `KURRENTDB_URL is not a KurrentDB connection string: the KurrentDB ledger was NOT tested (${why})`,
    )
  }
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${PROBE_MS} ms`)), PROBE_MS)
    })
    await Promise.race([probe(client), timeout])
    return { url }
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    return skipped(
      `KurrentDB not reachable at ${printable(url)}: the KurrentDB ledger was NOT tested (${why})`,
    )
  } finally {
    clearTimeout(timer)
    await client.dispose().catch(() => {})
  }
}

/** A ledger stream name no other test run uses. */
export const uniqueLedger = (): string => `gl-test-${randomBytes(6).toString('hex')}`

/** Runs work with a client of its own, outside any ledger. */
export const withClient = async <T>(
  url: string,
  work: (client: KurrentDBClient) => Promise<T>,
): Promise<T> => {
  const client = KurrentDBClient.connectionString(url)
  try {
    return await work(client)
  } finally {
    await client.dispose()
  }
}

/** Soft-deletes a test ledger's stream; a ledger that was never written has none. */
export const dropLedger = (url: string, stream: string): Promise<void> =>
  withClient(url, async (client) => {
    await client.deleteStream(stream).catch((error: unknown) => {
      if (!(error instanceof StreamNotFoundError)) throw error
    })
  })
