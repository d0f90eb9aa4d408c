import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DECISION_NAMESPACE } from '../../src/decision/service.js'
import type { DataOf } from '../../src/domain/events.js'
import { verifyLedger } from '../../src/store/verify.js'
import { leafOf } from '../../src/tree/leaf.js'
import { leafHash, rootFromLeafHashes, toBase64 } from '../../src/tree/merkle.js'
import { allowedProposal, seedWorld, startTestApi, type TestApi, type World } from '../support/api.js'
import { freshSchema, postgresServer } from '../support/postgres.js'

const server = await postgresServer()

describe('two service instances on one PostgreSQL ledger', {
  skip: 'skip' in server ? server.skip : false,
}, () => {
  const url = 'url' in server ? server.url : ''
  const schema = freshSchema(url)
  let a: TestApi
  let b: TestApi
  let world: World

  before(async () => {
    const env = { LEDGER: 'postgres', POSTGRES_URL: url, POSTGRES_SCHEMA: schema.name } as const
    a = await startTestApi(env)
    b = await startTestApi(env)
    world = await seedWorld(a)
    await Promise.all([a.settle(), b.settle()])
  })

  after(async () => {
    await a?.close()
    await b?.close()
    await schema.drop()
  })

  test('both serve one ledger: no lost append, no double verdict, the same world on both', async () => {
    // proposals and their evidence through both instances at once, while both decision services run
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => allowedProposal(i % 2 === 0 ? a : b, world, { replicas: 10 + i })),
    )
    await Promise.all([a.settle(), b.settle()])
    assert.equal(new Set(results.map((r) => r.proposalId)).size, 8)

    const events = await a.runtime.store.readAll(0, 100_000)
    assert.deepEqual(
      events.map((e) => e.position),
      Array.from({ length: events.length }, (_, i) => i + 1),
      'one gap-free global order',
    )
    const verdicts = events
      .filter((e) => e.type === 'VerdictIssued')
      .map((e) => e.data as DataOf<'VerdictIssued'>)
    const revisions = verdicts.map((v) => `${v.proposalId}/${v.revision}`)
    assert.equal(new Set(revisions).size, revisions.length, 'no proposal has two verdicts for one revision')
    for (const r of results) {
      assert.ok(
        verdicts.some((v) => v.proposalId === r.proposalId && v.decision === 'allow'),
        `${r.proposalId} allowed`,
      )
    }
    assert.equal((await verifyLedger(a.runtime.store)).ok, true)
    assert.deepEqual(
      a.runtime.docs.dump(DECISION_NAMESPACE),
      b.runtime.docs.dump(DECISION_NAMESPACE),
      'both decision services hold the same world, byte for byte',
    )
    // each instance keeps its own Merkle tree in its own derived.db: the same tree, the ledger's
    const head = toBase64(rootFromLeafHashes(events.map((e) => leafHash(leafOf(e)))))
    for (const instance of [a, b]) {
      assert.equal(instance.runtime.tree.size(), events.length)
      assert.equal(toBase64(instance.runtime.tree.root()), head, 'the tree head of the ledger')
    }
    console.log(
      `two instances on PostgreSQL: ${events.length} events, ${verdicts.length} verdicts, none doubled, chain ok, worlds identical`,
    )
  })
})
