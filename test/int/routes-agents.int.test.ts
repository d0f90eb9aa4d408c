import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  appendsNothing,
  expectError,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

const fieldsOf = (error: { details: unknown }) =>
  (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)

describe('agent and promotion routes', () => {
  let api: TestApi
  let world: World
  const admin = () => api.as('admin', 'policy-admin')

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
  })
  after(() => api.close())

  const register = async (agentId: string) => {
    const answer = await admin().post('/v1/agents', {
      agentId,
      owner: 'platform-team',
      description: 'test agent',
    })
    assert.equal(answer.statusCode, 201, answer.body)
    return answer.json()
  }

  test('registering an agent records it at observe everywhere', async () => {
    const body = await register('agent-r1')
    assert.equal(body.agentId, 'agent-r1')
    assert.equal(body.duplicate, false)
    assert.deepEqual(
      body.events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['AgentRegistered', 'agent-agent-r1']],
    )
    const [stored] = await api.runtime.store.readStream('agent-agent-r1')
    assert.deepEqual(stored?.data, { agentId: 'agent-r1', owner: 'platform-team', description: 'test agent' })
    assert.equal(stored?.metadata.actor, 'admin')
    await api.settle()
    const view = await api.as('auditor-1', 'auditor').get('/v1/agents/agent-r1')
    assert.equal(view.statusCode, 200, view.body)
    const { asOf, ...agent } = view.json()
    assert.deepEqual(agent, {
      agentId: 'agent-r1',
      owner: 'platform-team',
      levels: {},
      pendingPromotions: [],
      refusedPromotions: 0,
    })
    assert.equal(typeof asOf, 'number')
  })

  test('the seeded agents hold the levels they climbed to, one rung at a time', async () => {
    const one = (await api.as('agent-1', 'agent').get('/v1/agents/agent-1')).json()
    assert.equal(one.levels.production.level, 'execute')
    assert.equal(one.levels.staging.level, 'execute')
    assert.equal(one.levels.production.approvedBy, 'admin-2', 'the second admin completes each promotion')
    const two = (await api.as('agent-2', 'agent').get('/v1/agents/agent-2')).json()
    assert.deepEqual(Object.keys(two.levels), ['production'])
    assert.equal(two.levels.production.level, 'recommend')
    const promoted = (await api.runtime.store.readStream('agent-agent-1')).filter(
      (e) => e.type === 'AgentPromoted',
    )
    assert.deepEqual(
      promoted.map((e) => (e.data as { to: string }).to),
      ['recommend', 'simulate', 'execute', 'recommend', 'simulate', 'execute'],
    )
    assert.equal(world.agents.length, 2)
  })

  test('the agent list pages through every registered agent in agentId order, for admins and auditors only', async () => {
    await api.settle()
    const auditor = api.as('auditor-1', 'auditor')
    const all = (await auditor.get('/v1/agents?limit=1000')).json()
    const ids = all.agents.map((a: { agentId: string }) => a.agentId)
    assert.ok(ids.includes('agent-1') && ids.includes('agent-2'), ids.join(','))
    assert.deepEqual(ids, [...ids].sort())
    assert.equal(all.next, null)
    const one = all.agents.find((a: { agentId: string }) => a.agentId === 'agent-1')
    assert.equal(one.levels.production.level, 'execute')
    const paged: string[] = []
    let after: string | null = null
    do {
      const query: string = after === null ? '' : `&after=${after}`
      const page = (await auditor.get(`/v1/agents?limit=1${query}`)).json()
      assert.ok(page.agents.length <= 1)
      paged.push(...page.agents.map((a: { agentId: string }) => a.agentId))
      after = page.next
    } while (after !== null)
    assert.deepEqual(paged, ids)
    assert.equal((await api.as('agent-1', 'agent').get('/v1/agents')).statusCode, 403)
    assert.equal((await auditor.get('/v1/agents?limit=0')).statusCode, 400)
  })

  test("an agent's history tells its ladder in ledger order; the agent reads its own only", async () => {
    const history = await api.as('auditor-1', 'auditor').get('/v1/agents/agent-1/history')
    assert.equal(history.statusCode, 200, history.body)
    const { agentId, events } = history.json()
    assert.equal(agentId, 'agent-1')
    assert.equal(events[0].type, 'AgentRegistered')
    assert.equal(events[0].environment, null)
    const positions = events.map((e: { position: number }) => e.position)
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
    )
    const promoted = events.filter((e: { type: string }) => e.type === 'AgentPromoted')
    assert.deepEqual(
      promoted.map((e: { environment: string; to: string }) => `${e.environment}:${e.to}`),
      [
        'production:recommend',
        'production:simulate',
        'production:execute',
        'staging:recommend',
        'staging:simulate',
        'staging:execute',
      ],
    )
    const stored = await api.runtime.store.readStream('agent-agent-1')
    assert.deepEqual(
      events.map((e: { eventId: string }) => e.eventId),
      stored.map((e) => e.id),
      'every event of the agent stream is a ladder event',
    )
    assert.equal((await api.as('agent-1', 'agent').get('/v1/agents/agent-1/history')).statusCode, 200)
    assert.equal((await api.as('agent-2', 'agent').get('/v1/agents/agent-1/history')).statusCode, 403)
    assert.equal((await api.as('auditor-1', 'auditor').get('/v1/agents/nobody/history')).statusCode, 404)
  })

  test('registering refuses: a second registration 409, a non-admin 403, a bad body 400 naming the field', async () => {
    await register('agent-r2')
    expectError(
      await appendsNothing(api, () =>
        admin().post('/v1/agents', { agentId: 'agent-r2', owner: 'someone-else' }),
      ),
      409,
      'conflict',
    )
    expectError(
      await appendsNothing(api, () =>
        api.as('agent-r3', 'agent').post('/v1/agents', { agentId: 'agent-r3', owner: 'platform-team' }),
      ),
      403,
      'forbidden',
    )
    for (const [body, field] of [
      [{ agentId: 'has space', owner: 'platform-team' }, 'body.agentId'],
      [{ agentId: 'agent-r4' }, 'body.owner'],
      [{ agentId: 'agent-r4', owner: 'platform-team', levels: { production: 'execute' } }, 'body'],
    ] as const) {
      const error = expectError(
        await appendsNothing(api, () => admin().post('/v1/agents', body)),
        400,
        'invalid',
      )
      assert.ok(fieldsOf(error).includes(field), `${field} in ${fieldsOf(error)}`)
    }
  })

  test('an agent reads its own authority and track record, not another agent’s (403); admins and auditors read any', async () => {
    const track = '/track-record?environment=production'
    for (const suffix of ['', track]) {
      const own = await api.as('agent-2', 'agent').get(`/v1/agents/agent-2${suffix}`)
      assert.equal(own.statusCode, 200, own.body)
      const other = expectError(
        await api.as('agent-2', 'agent').get(`/v1/agents/agent-1${suffix}`),
        403,
        'forbidden',
      )
      assert.match(other.message, /only its own/)
      // another agent learns nothing, not even whether the agent exists
      expectError(await api.as('agent-2', 'agent').get(`/v1/agents/nobody${suffix}`), 403, 'forbidden')
      for (const role of ['observer', 'simulator', 'approver', 'executor'] as const) {
        expectError(await api.as('agent-1', role).get(`/v1/agents/agent-1${suffix}`), 403, 'forbidden')
      }
      for (const [sub, role] of [
        ['admin', 'policy-admin'],
        ['auditor-1', 'auditor'],
      ] as const) {
        const read = await api.as(sub, role).get(`/v1/agents/agent-1${suffix}`)
        assert.equal(read.statusCode, 200, `${role}: ${read.body}`)
      }
    }
  })

  test('an unknown agent is a 404 for its authority, its track record and its promotions', async () => {
    const reader = api.as('auditor-1', 'auditor')
    expectError(await reader.get('/v1/agents/nobody'), 404, 'not-found')
    expectError(await reader.get('/v1/agents/nobody/track-record?environment=production'), 404, 'not-found')
    expectError(
      await appendsNothing(api, () =>
        admin().post('/v1/agents/nobody/promotions', { environment: 'production', to: 'recommend' }),
      ),
      404,
      'not-found',
    )
  })

  test('a promotion request carries the track record the ledger computed, never one from the body', async () => {
    const agent = api.as('agent-2', 'agent')
    for (const replicas of [2, 3]) {
      const proposed = await agent.post('/v1/proposals', {
        agentId: 'agent-2',
        executingIdentity: world.executingIdentity,
        tool: 'kubectl',
        action: 'scale',
        resource: world.observation.resource,
        environment: 'production',
        plan: { replicas },
        expectedImpact: 'high',
        snapshot: { version: world.observation.version },
      })
      assert.equal(proposed.statusCode, 201, proposed.body)
    }
    await api.settle()

    const forged = {
      environment: 'production',
      to: 'simulate',
      trackRecord: { proposals: 1000, violations: 0 },
    }
    const refusedBody = expectError(
      await appendsNothing(api, () => agent.post('/v1/agents/agent-2/promotions', forged)),
      400,
      'invalid',
    )
    assert.ok(fieldsOf(refusedBody).includes('body'))

    const track = (await agent.get('/v1/agents/agent-2/track-record?environment=production')).json()
    assert.equal(track.proposals, 2)
    assert.equal(track.days, 30)

    const asked = await agent.post('/v1/agents/agent-2/promotions', {
      environment: 'production',
      to: 'simulate',
    })
    assert.equal(asked.statusCode, 201, asked.body)
    const body = asked.json()
    assert.equal(body.outcome, 'requested')
    assert.equal(body.reason, undefined)
    const stored = (await api.runtime.store.readStream('agent-agent-2')).at(-1)
    assert.equal(stored?.type, 'PromotionRequested')
    const data = stored?.data as {
      requestId: string
      from: string
      to: string
      trackRecord: Record<string, unknown>
    }
    assert.equal(data.requestId, body.requestId)
    assert.equal(data.from, 'recommend')
    assert.equal(data.to, 'simulate')
    assert.equal(data.trackRecord.proposals, 2)
    assert.equal(data.trackRecord.violations, 0)
    const windowDays =
      (Date.parse(String(data.trackRecord.windowEnd)) - Date.parse(String(data.trackRecord.windowStart))) /
      86_400_000
    assert.equal(windowDays, 30)

    await api.settle()
    const view = (await agent.get('/v1/agents/agent-2')).json()
    assert.deepEqual(
      view.pendingPromotions.map((p: { requestId: string; to: string }) => [p.requestId, p.to]),
      [[body.requestId, 'simulate']],
    )

    // an approval has nothing to say but yes: no body at all is fine
    const approved = await api.app.inject({
      method: 'POST',
      url: `/v1/agents/agent-2/promotions/${body.requestId}/approval`,
      headers: { authorization: `Bearer ${await api.tokenFor('admin', 'policy-admin')}` },
    })
    assert.equal(approved.statusCode, 201, approved.body)
    assert.equal(approved.json().outcome, 'approved', 'one admin alone never promotes')
    assert.deepEqual(
      approved.json().events.map((e: { type: string }) => e.type),
      ['PromotionApproved'],
    )
    const again = await appendsNothing(api, () =>
      admin().post(`/v1/agents/agent-2/promotions/${body.requestId}/approval`, {}),
    )
    const twice = expectError(again, 403, 'forbidden')
    assert.equal((twice.details as { specification: string }).specification, 'secondDistinctAdmin')
    const second = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/agents/agent-2/promotions/${body.requestId}/approval`, {})
    assert.equal(second.statusCode, 201, second.body)
    assert.equal(second.json().outcome, 'promoted')
    const promoted = (await api.runtime.store.readStream('agent-agent-2')).at(-1)
    assert.equal(promoted?.type, 'AgentPromoted')
    const effect = promoted?.data as { approvedBy?: string; endorsedBy?: string[] } | undefined
    assert.equal(effect?.approvedBy, 'admin-2')
    assert.deepEqual(effect?.endorsedBy, ['admin', 'admin-2'])
  })

  test('a request that skips a rung is refused and recorded, with the reason', async () => {
    await register('agent-skip')
    const answer = await api.as('agent-skip', 'agent').post('/v1/agents/agent-skip/promotions', {
      requestId: 'skip-1',
      environment: 'production',
      to: 'execute',
    })
    assert.equal(answer.statusCode, 201, answer.body)
    const body = answer.json()
    assert.equal(body.outcome, 'refused')
    assert.equal(body.requestId, 'skip-1')
    assert.match(body.reason, /one rung at a time.*next rung is recommend/)
    assert.deepEqual(
      body.events.map((e: { type: string }) => e.type),
      ['PromotionRefused'],
    )
    await api.settle()
    assert.equal((await admin().get('/v1/agents/agent-skip')).json().refusedPromotions, 1)
  })

  test('only the agent itself or a policy-admin may ask; the agent never approves itself', async () => {
    await register('agent-self')
    const other = await appendsNothing(api, () =>
      api
        .as('agent-1', 'agent')
        .post('/v1/agents/agent-self/promotions', { environment: 'staging', to: 'recommend' }),
    )
    expectError(other, 403, 'forbidden')
    const wrongRole = await appendsNothing(api, () =>
      api
        .as('agent-self', 'observer')
        .post('/v1/agents/agent-self/promotions', { environment: 'staging', to: 'recommend' }),
    )
    expectError(wrongRole, 403, 'forbidden')

    const byAdmin = await admin().post('/v1/agents/agent-self/promotions', {
      requestId: 'self-1',
      environment: 'staging',
      to: 'recommend',
    })
    assert.equal(byAdmin.json().outcome, 'requested', byAdmin.body)

    const selfApproval = await appendsNothing(api, () =>
      api
        .as('agent-self', 'agent', 'policy-admin')
        .post('/v1/agents/agent-self/promotions/self-1/approval', {}),
    )
    assert.match(expectError(selfApproval, 403, 'forbidden').message, /own promotion/)
    const requesterApproval = await appendsNothing(api, () =>
      admin().post('/v1/agents/agent-self/promotions/self-1/approval', {}),
    )
    assert.match(expectError(requesterApproval, 403, 'forbidden').message, /second, distinct policy admin/)
    const approverRole = await appendsNothing(api, () =>
      api.as('approver-1', 'approver').post('/v1/agents/agent-self/promotions/self-1/approval', {}),
    )
    expectError(approverRole, 403, 'forbidden')
    const unknownRequest = await appendsNothing(api, () =>
      admin().post('/v1/agents/agent-self/promotions/no-such-request/approval', {}),
    )
    expectError(unknownRequest, 404, 'not-found')
    const secondPending = await appendsNothing(api, () =>
      admin().post('/v1/agents/agent-self/promotions', {
        requestId: 'self-2',
        environment: 'staging',
        to: 'recommend',
      }),
    )
    assert.match(expectError(secondPending, 409, 'conflict').message, /self-1/)
  })

  test('a policy-admin refuses a pending request with a reason', async () => {
    await register('agent-ref')
    await api.as('agent-ref', 'agent').post('/v1/agents/agent-ref/promotions', {
      requestId: 'ref-1',
      environment: 'production',
      to: 'recommend',
    })
    const noReason = await appendsNothing(api, () =>
      admin().post('/v1/agents/agent-ref/promotions/ref-1/refusal', {}),
    )
    assert.ok(fieldsOf(expectError(noReason, 400, 'invalid')).includes('body.reason'))
    const refused = await admin().post('/v1/agents/agent-ref/promotions/ref-1/refusal', {
      reason: 'not enough simulations yet',
    })
    assert.equal(refused.statusCode, 201, refused.body)
    assert.equal(refused.json().outcome, 'refused')
    assert.equal(refused.json().reason, 'not enough simulations yet')
    const stored = (await api.runtime.store.readStream('agent-agent-ref')).at(-1)
    assert.equal(stored?.type, 'PromotionRefused')
    assert.equal(stored?.metadata.actor, 'admin')
    const again = await appendsNothing(api, () =>
      admin().post('/v1/agents/agent-ref/promotions/ref-1/refusal', { reason: 'twice' }),
    )
    expectError(again, 404, 'not-found')
  })

  test('a retried promotion request with the same Idempotency-Key returns the first answer', async () => {
    await register('agent-idem')
    const self = api.as('agent-idem', 'agent')
    const headers = { 'idempotency-key': 'promote-idem-1' }
    const body = { environment: 'production', to: 'recommend' }
    const first = await self.post('/v1/agents/agent-idem/promotions', body, headers)
    assert.equal(first.statusCode, 201, first.body)
    const retried = await appendsNothing(api, () =>
      self.post('/v1/agents/agent-idem/promotions', body, headers),
    )
    assert.equal(retried.statusCode, 201)
    assert.equal(retried.json().duplicate, true)
    assert.equal(retried.json().requestId, first.json().requestId)
    assert.deepEqual(retried.json().events, first.json().events)
  })

  test('the track record query is validated', async () => {
    const reader = api.as('auditor-1', 'auditor')
    const noEnvironment = expectError(await reader.get('/v1/agents/agent-1/track-record'), 400, 'invalid')
    assert.ok(fieldsOf(noEnvironment).includes('querystring.environment'))
    const badDays = expectError(
      await reader.get('/v1/agents/agent-1/track-record?environment=production&days=0'),
      400,
      'invalid',
    )
    assert.ok(fieldsOf(badDays).includes('querystring.days'))
    const week = (await reader.get('/v1/agents/agent-1/track-record?environment=production&days=7')).json()
    assert.equal(week.days, 7)
    assert.equal((Date.parse(week.windowEnd) - Date.parse(week.windowStart)) / 86_400_000, 7)
  })

  test('a promotion is earned: a track record short of the policy is refused with the numbers, whoever asks', async () => {
    const strict = {
      windowDays: 30,
      minProposals: 3,
      minSimulationsPassed: 1,
      minSurvivalRate: 0.9,
      maxViolations: 0,
      maxFailedExecutions: 0,
    }
    const current = (await admin().get('/v1/policies/current')).json()
    const {
      publishedAt: _at,
      eventId: _id,
      publishedBy: _by,
      approvedBy: _approved,
      ...draft
    } = current as Record<string, unknown>
    const next = {
      ...draft,
      version: (current.version as number) + 1,
      promotion: { recommend: strict, simulate: strict, execute: strict },
    }
    const published = await admin().post('/v1/policies', next)
    assert.equal(published.statusCode, 202, published.body)
    const approved = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/changes/${published.json().requestId}/approval`, {})
    assert.equal(approved.statusCode, 201, approved.body)

    await register('agent-earn')
    for (const asker of [api.as('agent-earn', 'agent'), admin()]) {
      const answer = await asker.post('/v1/agents/agent-earn/promotions', {
        environment: 'production',
        to: 'recommend',
      })
      assert.equal(answer.statusCode, 201, answer.body)
      assert.equal(answer.json().outcome, 'refused')
      assert.match(answer.json().reason, /0 proposals of 3 required/)
      assert.match(answer.json().reason, /0 simulations passed of 1 required/)
    }
  })
})
