import assert from 'node:assert/strict'
import { it } from 'node:test'
import pg from 'pg'
import { type ContainerService, containerFor, dockerEngine, IMAGES } from '../support/containers.js'

const engine = await dockerEngine()
const noEngine = 'no Docker engine is reachable: the containers were NOT started'
const withEngine = 'a Docker engine is reachable: the fallback to the local services was NOT tested'
if (!engine) console.warn(`\n!!! SKIPPED (the container test): ${noEngine}\n`)
else console.warn(`\n!!! SKIPPED (the fallback test): ${withEngine}\n`)

it('without a Docker engine, starts nothing and says once that the local services stand in', {
  skip: engine ? withEngine : false,
}, async (t) => {
  const log = t.mock.method(console, 'log', () => {})
  const services = Object.keys(IMAGES) as ContainerService[]
  for (const service of [...services, ...services]) assert.equal(await containerFor(service), null)
  const said = log.mock.calls.filter((call) => String(call.arguments[0]).startsWith('no Docker engine'))
  assert.equal(said.length, 1)
})

it('with a Docker engine, starts PostgreSQL once per process and it answers', {
  skip: engine ? false : noEngine,
  timeout: 240_000,
}, async () => {
  const [url, again] = await Promise.all([containerFor('postgres'), containerFor('postgres')])
  assert.ok(url)
  assert.equal(again, url)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ one: number }>('SELECT 1 AS one')
    assert.equal(rows[0]?.one, 1)
  } finally {
    await client.end()
  }
})
