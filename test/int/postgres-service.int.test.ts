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

describe('service instances on one PostgreSQL ledger', {
  skip: 'skip' in server ? server.skip : false,
}, () => {
  const url = 'url' in server ? server.url : ''
  const schema = freshSchema(url)
  let a: TestApi
  let b: TestApi
  /** decides and answers commands, keeps no read models */
  let c: TestApi
  let world: World

  before(async () => {
    const env = { LEDGER: 'postgres', POSTGRES_URL: url, POSTGRES_SCHEMA: schema.name } as const
    a = await startTestApi(env)
    b = await startTestApi(env)
    c = await startTestApi({ ...env, READ_MODELS: 'false' })
    world = await seedWorld(a)
    await Promise.all([a.settle(), b.settle(), c.settle()])
  })

  after(async () => {
    await a?.close()
    await b?.close()
    await c?.close()
    await schema.drop()
  })

  test('all serve one ledger: no lost append, no double verdict, the same world on each', async () => {
    // proposals and their evidence through the three instances at once, one of them keeping no read models
    const results = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        allowedProposal([a, b, c][i % 3] as TestApi, world, { replicas: 10 + i }),
      ),
    )
    await Promise.all([a.settle(), b.settle(), c.settle()])
    assert.equal(new Set(results.map((r) => r.proposalId)).size, 9)

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
    for (const other of [b, c])
      assert.deepEqual(
        other.runtime.docs.dump(DECISION_NAMESPACE),
        a.runtime.docs.dump(DECISION_NAMESPACE),
        'every decision service holds the same world, byte for byte',
      )
    // each instance keeps its own Merkle tree in its own derived.db: the same tree, the ledger's
    const head = toBase64(rootFromLeafHashes(events.map((e) => leafHash(leafOf(e)))))
    for (const instance of [a, b]) {
      assert.equal(instance.runtime.tree.size(), events.length)
      assert.equal(toBase64(instance.runtime.tree.root()), head, 'the tree head of the ledger')
    }
    assert.equal(c.runtime.tree.size(), 0, 'the instance keeping no read models keeps no tree')
    console.log(
      `three instances on PostgreSQL, one keeping no read models: ${events.length} events, ${verdicts.length} verdicts, none doubled, chain ok, worlds identical`,
    )
  })
})
