import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { NO_READ_MODELS } from '../../src/http/read-models.js'
import {
  allowedProposal,
  expectError,
  SEED,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

/** Every read answered from the read models, as an auditor (or the policy admin) may send it. */
const READS = [
  ['GET', '/v1/open-actions'],
  ['GET', '/v1/metrics/headline'],
  ['GET', '/v1/survival'],
  ['GET', '/v1/audit/actions/p-1'],
  ['GET', '/v1/audit/agents/agent-1'],
  ['GET', '/v1/audit/resources/production/deployment%2Fweb'],
  ['GET', '/v1/agents'],
  ['GET', '/v1/agents/agent-1'],
  ['GET', '/v1/agents/agent-1/history'],
  ['GET', '/v1/agents/agent-1/track-record?environment=production'],
  ['GET', '/v1/ledger/head'],
  ['GET', '/v1/ledger/tree'],
  ['GET', '/v1/ledger/proofs/inclusion?position=1'],
  ['GET', '/v1/ledger/proofs/consistency?from=1'],
  ['GET', '/v1/policies/shadow'],
  ['POST', '/v1/ledger/checkpoint-verifications'],
  // commands judged on a read model: the track record a promotion carries is computed from the authority view
  ['POST', '/v1/agents/agent-2/promotions', { environment: 'production', to: 'simulate' }],
  ['POST', '/v1/agents/agent-2/promotions/r-1/approval'],
] as const satisfies readonly (readonly [string, string, object?])[]

describe('an instance that keeps no read models (READ_MODELS=false)', () => {
  let api: TestApi
  let world: World

  /** where each view and the Merkle tree stood when the instance started: it moves none of them */
  let frozen: { views: number[]; tree: number }

  before(async () => {
    // promotions are judged on the authority view, so an instance with read models seeds the world; the one
    // without opens the same data folder after it
    const seeder = await startTestApi()
    world = await seedWorld(seeder)
    await seeder.settle()
    await seeder.app.close()
    await seeder.runtime.close()
    api = await startTestApi({ READ_MODELS: 'false', DATA_DIR: seeder.dataDir })
    await api.settle()
    frozen = {
      views: Object.values(api.runtime.views).map((view) => view.checkpoint()),
      tree: api.runtime.tree.size(),
    }
  })
  after(async () => {
    await api?.close()
  })

  test('decides as any instance: an allow earned by evidence, revoked by a kill switch engaged through it', async () => {
    const allowed = await allowedProposal(api, world)
    const verdict = await api.as('agent-1', 'agent').get(`/v1/proposals/${allowed.proposalId}/verdict`)
    assert.equal(verdict.statusCode, 200, verdict.body)
    assert.equal(verdict.json().verdict.decision, 'allow')
    assert.equal(verdict.json().verdict.revoked, false)

    const engaged = await api
      .as(SEED.admin, 'policy-admin')
      .post('/v1/kill-switches', { scope: 'tool', target: 'kubectl', reason: 'drill' })
    assert.equal(engaged.statusCode, 201, engaged.body)
    await api.settle()
    const after = await api.as('agent-1', 'agent').get(`/v1/proposals/${allowed.proposalId}/verdict`)
    assert.equal(after.json().verdict.verdictId, allowed.verdictId)
    assert.equal(
      after.json().verdict.revoked,
      true,
      'the allow is revoked by the switch, on this instance too',
    )
  })

  test('answers every read of a read model 503, saying why, and only after authentication', async () => {
    for (const [method, url, payload = {}] of READS) {
      const auditor = api.as('auditor-1', 'auditor', 'policy-admin')
      const answer = method === 'GET' ? await auditor.get(url) : await auditor.post(url, payload)
      const body = expectError(answer, 503, 'unavailable')
      assert.equal(body.message, NO_READ_MODELS, `${method} ${url}`)
      const anonymous = await api.app.inject({ method, url })
      assert.equal(anonymous.statusCode, 401, `${method} ${url} without a token`)
    }
  })

  test('follows the ledger with its decision world alone: no view, no tree, no derived series', async () => {
    const head = await api.head()
    assert.ok(head > 50, `the ledger has grown: ${head} events`)
    assert.equal(api.runtime.decision.position, head, 'the decision world is current')
    assert.deepEqual(
      Object.values(api.runtime.views).map((view) => view.checkpoint()),
      frozen.views,
      'no view follows the ledger',
    )
    assert.ok(frozen.views.every((at) => at < head))
    assert.equal(api.runtime.tree.size(), frozen.tree, 'no Merkle tree kept')
    assert.ok(frozen.tree < head)

    const scraped = await api.as('ops', 'policy-admin').get('/metrics')
    assert.equal(scraped.statusCode, 200)
    assert.match(scraped.body, new RegExp(`^governance_ledger_head_position ${head}$`, 'm'))
    assert.match(scraped.body, /^governance_decision_lag_events 0$/m)
    for (const series of ['governance_verdicts_total', 'governance_unsafe_actions_blocked_total'])
      assert.doesNotMatch(scraped.body, new RegExp(`^${series}`, 'm'), `${series} is left out, not zero`)

    const ready = await api.app.inject({ method: 'GET', url: '/ready' })
    assert.equal(ready.statusCode, 200, ready.body)
  })
})
