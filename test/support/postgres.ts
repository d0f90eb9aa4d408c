// PostgreSQL for tests: a real server always. POSTGRES_URL names one; without it, a postgres container where a
// Docker engine is reachable (containers.ts), else the local server. When none can be reached the PostgreSQL
// tests are skipped with one loud line, except where REQUIRE_SERVICES names postgres (CI): there they fail.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { containerFor } from './containers.js'

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

export const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('postgres')

/** The URL without its password, fit to print. */
const printable = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(an unparsable URL)'
  }
}

const skipped = (reason: string): { skip: string } => {
  if (required()) throw new Error(`REQUIRE_SERVICES includes postgres, but ${reason}`)
  console.warn(`\n!!! SKIPPED: ${reason}\n`)
  return { skip: reason }
}

/** The server to test against, or a skip reason (an error where CI requires PostgreSQL). */
export const postgresServer = async (): Promise<{ url: string } | { skip: string }> => {
  let url = process.env.POSTGRES_URL
  if (!url) {
    try {
      url = (await containerFor('postgres')) ?? DEFAULT_URL
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error)
      return skipped(`the PostgreSQL ledger was NOT tested: ${why}`)
    }
  }
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return { url }
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    return skipped(
      `PostgreSQL not reachable at ${printable(url)}: the PostgreSQL ledger was NOT tested (${why})`,
    )
  } finally {
    await client.end().catch(() => {})
  }
}

/** A name no other test run uses: gl_test_ and random hex. */
export const uniqueName = (): string => `gl_test_${randomBytes(6).toString('hex')}`

/** Runs statements on the server's own connection, outside any ledger. */
export const admin = async <T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/** A new empty database on the server, and how to drop it. */
export const freshDatabase = async (
  url: string,
): Promise<{ name: string; url: string; drop(): Promise<void> }> => {
  const name = uniqueName()
  await admin(url, (c) => c.query(`CREATE DATABASE ${name}`))
  const target = new URL(url)
  target.pathname = `/${name}`
  return {
    name,
    url: target.toString(),
    drop: async () => void (await admin(url, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  }
}

/** A schema name of its own for one test, and how to drop it with everything in it. */
export const freshSchema = (url: string): { name: string; drop(): Promise<void> } => {
  const name = uniqueName()
  return {
    name,
    drop: async () => void (await admin(url, (c) => c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`))),
  }
}
