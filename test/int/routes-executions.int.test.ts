import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { actionStory, auditKeys } from '../../projections/audit.js'
import { metricsKeys } from '../../projections/metrics.js'
import {
  type AllowedProposal,
  allowedProposal,
  appendsNothing,
  expectError,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

const eventTypes = (body: { events: { type: string }[] }) => body.events.map((e) => e.type)

const streamTypes = async (api: TestApi, proposalId: string) =>
  (await api.runtime.store.readStream(`proposal-${proposalId}`)).map((e) => e.type)

describe('execution and rollback routes', () => {
  let api: TestApi
  let world: World
  const executor = () => api.as('executor-1', 'executor')

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
  })
  after(() => api.close())

  test('the whole lifecycle: allow, execute citing it, fail, roll back, complete; audit and metrics follow', async () => {
    const allowed = await allowedProposal(api, world)
    const { proposalId } = allowed
    const base = `/v1/proposals/${proposalId}`

    const started = await executor().post(`${base}/executions`, {
      verdictId: allowed.verdictId,
      actionDigest: allowed.actionDigest,
    })
    assert.equal(started.statusCode, 201, started.body)
    const { executionId } = started.json()
    assert.match(executionId, /^[0-9a-f-]{36}$/)
    assert.deepEqual(eventTypes(started.json()), ['ExecutionStarted'])

    const failed = await executor().post(`${base}/executions/${executionId}/failure`, {
      error: 'pods crash-looping after the scale-up',
      resourceVersionAfter: 'v2',
    })
    assert.equal(failed.statusCode, 201, failed.body)
    assert.deepEqual(eventTypes(failed.json()), ['ExecutionFailed'])

    const rolling = await executor().post(`${base}/rollbacks`, { executionId })
    assert.equal(rolling.statusCode, 201, rolling.body)
    const { rollbackId } = rolling.json()
    assert.deepEqual(eventTypes(rolling.json()), ['RollbackStarted'])

    const completed = await executor().post(`${base}/rollbacks/${rollbackId}/completion`, {
      resourceVersionAfter: 'v3',
    })
    assert.equal(completed.statusCode, 201, completed.body)
    assert.deepEqual(eventTypes(completed.json()), ['RollbackCompleted'])

    const view = (await api.as('auditor-1', 'auditor').get(base)).json()
    assert.equal(view.status, 'recovered')
    assert.equal(view.executionId, executionId)
    assert.equal(view.rollbackId, rollbackId)
    assert.equal(view.violation, null)

    await api.settle()
    const types = await streamTypes(api, proposalId)
    assert.ok(!types.includes('ViolationRecorded'), 'an execution citing a live allow is no violation')
    const stored = await api.runtime.store.readStream(`proposal-${proposalId}`)
    const startEvent = stored.find((e) => e.type === 'ExecutionStarted')
    assert.deepEqual(startEvent?.data, {
      proposalId,
      executionId,
      verdictId: allowed.verdictId,
      actionDigest: allowed.actionDigest,
      executor: 'executor-1',
    })
    assert.equal(startEvent?.metadata.actor, 'executor-1')

    const action = api.runtime.views.audit.get(auditKeys.action(proposalId))
    assert.equal(action?.kind, 'action')
    if (action?.kind !== 'action') return
    assert.equal(action.who.executor, 'executor-1')
    assert.equal(action.who.agentId, 'agent-1')
    assert.deepEqual(
      action.who.approvers.map((a) => a.approver),
      ['approver-1'],
    )
    assert.equal(action.what.resourceVersionBefore, 'v1')
    assert.equal(action.what.resourceVersionAfter, 'v3')
    assert.equal(action.howFast.rollbackExpectedSeconds, 120)
    assert.equal(action.howFast.failedAt, stored.find((e) => e.type === 'ExecutionFailed')?.recordedAt)
    assert.equal(action.howFast.recoveredAt, stored.find((e) => e.type === 'RollbackCompleted')?.recordedAt)
    assert.ok((action.howFast.timeToRecoverySeconds ?? -1) >= 0)
    assert.equal(action.outcome, 'recovered')
    const { timeline } = actionStory(
      api.runtime.views.audit.list(auditKeys.actionEvents(proposalId)).map(([, doc]) => doc),
    )
    assert.deepEqual(
      timeline.map((t) => t.eventId),
      stored.map((e) => e.id),
      'the timeline is every event of the action, in ledger order',
    )

    const completedAt = stored.find((e) => e.type === 'RollbackCompleted')?.recordedAt ?? ''
    const day = api.runtime.views.metrics.get(metricsKeys.day(completedAt))
    assert.equal(day?.kind, 'window')
    if (day?.kind !== 'window') return
    assert.equal(day.failedDespiteAllow, 1)
    assert.equal(day.recoveries.count, 1)
    assert.deepEqual(Object.keys(day.recoveries.byAgent), ['agent-1'])
    assert.equal(day.violations.count, 0)
  })

  test('a successful execution records the resource version it left', async () => {
    const allowed = await allowedProposal(api, world, { replicas: 6 })
    const base = `/v1/proposals/${allowed.proposalId}`
    const started = await executor().post(`${base}/executions`, {
      executionId: 'exec-success-1',
      verdictId: allowed.verdictId,
      actionDigest: allowed.actionDigest,
    })
    assert.equal(started.statusCode, 201, started.body)
    assert.equal(started.json().executionId, 'exec-success-1')
    const done = await executor().post(`${base}/executions/exec-success-1/success`, {
      resourceVersionAfter: 'v2',
    })
    assert.equal(done.statusCode, 201, done.body)
    assert.deepEqual(eventTypes(done.json()), ['ExecutionSucceeded'])
    assert.equal((await executor().get(base)).json().status, 'succeeded')
    await api.settle()
    const action = api.runtime.views.audit.get(auditKeys.action(allowed.proposalId))
    assert.equal(action?.kind === 'action' && action.what.resourceVersionAfter, 'v2')
  })

  describe('refusals append nothing', () => {
    let allowed: AllowedProposal
    before(async () => {
      allowed = await allowedProposal(api, world, { replicas: 7 })
    })

    test('only an executor may start, finish or roll back an execution (403)', async () => {
      const body = { verdictId: allowed.verdictId, actionDigest: allowed.actionDigest }
      for (const client of [
        api.as('agent-1', 'agent'),
        api.as('approver-1', 'approver'),
        api.as('admin', 'policy-admin', 'auditor'),
      ]) {
        const answer = await appendsNothing(api, () =>
          client.post(`/v1/proposals/${allowed.proposalId}/executions`, body),
        )
        const error = expectError(answer, 403, 'forbidden')
        assert.deepEqual((error.details as { required: string[] }).required, ['executor'])
      }
      const rollback = await appendsNothing(api, () =>
        api
          .as('agent-1', 'agent')
          .post(`/v1/proposals/${allowed.proposalId}/rollbacks`, { executionId: 'x' }),
      )
      expectError(rollback, 403, 'forbidden')
    })

    test('no token is a 401', async () => {
      const answer = await api.app.inject({
        method: 'POST',
        url: `/v1/proposals/${allowed.proposalId}/executions`,
        payload: { verdictId: allowed.verdictId, actionDigest: allowed.actionDigest },
      })
      expectError(answer, 401, 'unauthenticated')
    })

    test('an unknown proposal, execution or rollback is a 404', async () => {
      const unknownProposal = await appendsNothing(api, () =>
        executor().post('/v1/proposals/no-such-proposal/executions', {
          verdictId: allowed.verdictId,
          actionDigest: allowed.actionDigest,
        }),
      )
      expectError(unknownProposal, 404, 'not-found')
      const unknownExecution = await appendsNothing(api, () =>
        executor().post(`/v1/proposals/${allowed.proposalId}/executions/no-such-execution/success`, {
          resourceVersionAfter: null,
        }),
      )
      assert.match(expectError(unknownExecution, 404, 'not-found').message, /no-such-execution/)
      const unknownRollback = await appendsNothing(api, () =>
        executor().post(`/v1/proposals/${allowed.proposalId}/rollbacks/no-such-rollback/completion`, {
          resourceVersionAfter: null,
        }),
      )
      expectError(unknownRollback, 404, 'not-found')
    })

    test('a bad body is a 400 naming the field', async () => {
      const url = `/v1/proposals/${allowed.proposalId}/executions`
      const cases: [unknown, string][] = [
        [{ verdictId: allowed.verdictId, actionDigest: 'sha256:short' }, 'body.actionDigest'],
        [{ verdictId: 'not-a-uuid', actionDigest: allowed.actionDigest }, 'body.verdictId'],
        [{ actionDigest: allowed.actionDigest }, 'body.verdictId'],
        [
          { verdictId: allowed.verdictId, actionDigest: allowed.actionDigest, executor: 'someone-else' },
          'body',
        ],
        [
          { verdictId: allowed.verdictId, actionDigest: allowed.actionDigest, executionId: 'has spaces' },
          'body.executionId',
        ],
      ]
      for (const [body, field] of cases) {
        const answer = await appendsNothing(api, () => executor().post(url, body))
        const error = expectError(answer, 400, 'invalid')
        const fields = (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)
        assert.ok(fields.includes(field), `${JSON.stringify(body)}: ${fields.join(', ')}`)
      }
      const token = await api.tokenFor('executor-1', 'executor')
      const notJson = await appendsNothing(api, () =>
        api.app.inject({
          method: 'POST',
          url,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          payload: '{"verdictId":',
        }),
      )
      expectError(notJson, 400, 'invalid')
    })

    test('state conflicts are a 409: a second start (refused at the gate and recorded), finishing twice, rolling back an open proposal', async () => {
      const open = await allowedProposal(api, world, { replicas: 8 })
      const rollbackOfOpen = await appendsNothing(api, () =>
        executor().post(`/v1/proposals/${open.proposalId}/rollbacks`, { executionId: 'never-started' }),
      )
      assert.match(expectError(rollbackOfOpen, 409, 'conflict').message, /open/)

      const base = `/v1/proposals/${allowed.proposalId}`
      const started = await executor().post(`${base}/executions`, {
        executionId: 'exec-conflict-1',
        verdictId: allowed.verdictId,
        actionDigest: allowed.actionDigest,
      })
      assert.equal(started.statusCode, 201, started.body)
      const again = await executor().post(`${base}/executions`, {
        executionId: 'exec-conflict-2',
        verdictId: allowed.verdictId,
        actionDigest: allowed.actionDigest,
      })
      const refused = expectError(again, 409, 'conflict')
      const reasons = (refused.details as { reasons: { specification: string }[] }).reasons
      assert.deepEqual(
        reasons.map((r) => r.specification),
        ['proposalIsOpen'],
      )
      assert.ok((await streamTypes(api, allowed.proposalId)).includes('ExecutionRefused'))
      const ok = await executor().post(`${base}/executions/exec-conflict-1/success`, {
        resourceVersionAfter: 'v2',
      })
      assert.equal(ok.statusCode, 201)
      const twice = await appendsNothing(api, () =>
        executor().post(`${base}/executions/exec-conflict-1/failure`, {
          error: 'late',
          resourceVersionAfter: null,
        }),
      )
      assert.match(expectError(twice, 409, 'conflict').message, /succeeded/)
    })
  })

  test('a retry with the same Idempotency-Key returns the first answer, generated ids included', async () => {
    const allowed = await allowedProposal(api, world, { replicas: 9 })
    const url = `/v1/proposals/${allowed.proposalId}/executions`
    const body = { verdictId: allowed.verdictId, actionDigest: allowed.actionDigest }
    const headers = { 'idempotency-key': 'start-9' }
    const first = await executor().post(url, body, headers)
    assert.equal(first.statusCode, 201, first.body)
    const retried = await appendsNothing(api, () => executor().post(url, body, headers))
    assert.equal(retried.statusCode, 201)
    assert.equal(retried.json().duplicate, true)
    assert.equal(retried.json().executionId, first.json().executionId)
    assert.deepEqual(retried.json().events, first.json().events)

    const { executionId } = first.json()
    await executor().post(`${url}/${executionId}/failure`, { error: 'boom', resourceVersionAfter: null })
    const rollbackHeaders = { 'idempotency-key': 'rollback-9' }
    const rb = await executor().post(
      `/v1/proposals/${allowed.proposalId}/rollbacks`,
      { executionId },
      rollbackHeaders,
    )
    const rbAgain = await appendsNothing(api, () =>
      executor().post(`/v1/proposals/${allowed.proposalId}/rollbacks`, { executionId }, rollbackHeaders),
    )
    assert.equal(rbAgain.json().duplicate, true)
    assert.equal(rbAgain.json().rollbackId, rb.json().rollbackId)
  })

  test('a start citing no verdict is refused at the gate and recorded; nobody is demoted', async () => {
    const agent = api.as('agent-1', 'agent')
    const submitted = await agent.post('/v1/proposals', {
      agentId: 'agent-1',
      executingIdentity: world.executingIdentity,
      tool: 'cache',
      action: 'flush',
      resource: 'cache/web',
      environment: 'staging',
      plan: { keys: '*' },
      expectedImpact: 'low',
      snapshot: { version: 'v1' },
    })
    assert.equal(submitted.statusCode, 201, submitted.body)
    const { proposalId, actionDigest } = submitted.json()
    const started = await executor().post(`/v1/proposals/${proposalId}/executions`, {
      verdictId: null,
      actionDigest,
    })
    const error = expectError(started, 409, 'conflict')
    assert.match(error.message, /cites no verdict/)
    await api.settle()
    const stored = await api.runtime.store.readStream(`proposal-${proposalId}`)
    const refused = stored.find((e) => e.type === 'ExecutionRefused')
    assert.equal((refused?.data as { executor?: string } | undefined)?.executor, 'executor-1')
    assert.ok(!stored.some((e) => e.type === 'ExecutionStarted' || e.type === 'ViolationRecorded'))
    const agentView = (await api.as('admin', 'policy-admin', 'auditor').get('/v1/agents/agent-1')).json()
    assert.equal(agentView.levels.staging.level, 'execute', 'a refused start demotes no one')
    const day = api.runtime.views.metrics.get(metricsKeys.day(refused?.recordedAt ?? ''))
    assert.equal(day?.kind === 'window' && day.refusedAtGate.byRule.citesLiveAllow, 1)
  })

  test('fail closed: an event the decision service cannot answer is not recorded (503), and the allow still stands', async () => {
    const allowed = await allowedProposal(api, world, { replicas: 11 })
    const signer = api.runtime.verdictSigner as { sign: (...args: never[]) => string }
    const sign = signer.sign
    signer.sign = () => {
      throw new Error('the verdict key cannot sign')
    }
    const before = await api.head()
    try {
      // an observation that calls for a new verdict, which cannot be signed: neither is appended
      const observed = await api.as('observer-1', 'observer').post('/v1/observations', {
        environment: 'production',
        resource: world.observation.resource,
        version: 'v1',
        digest: 'sha256:web-v1-again',
        observedAt: new Date().toISOString(),
      })
      const error = expectError(observed, 503, 'unavailable')
      assert.match(error.message, /decision service could not answer/)
      assert.equal(await api.head(), before, 'nothing was recorded')
    } finally {
      signer.sign = sign
    }
    const started = await executor().post(`/v1/proposals/${allowed.proposalId}/executions`, {
      verdictId: allowed.verdictId,
      actionDigest: allowed.actionDigest,
    })
    assert.equal(started.statusCode, 201, started.body)
    await api.settle()
  })
})
