import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { decide, decideAndEvolve, type Output } from '../../src/decision/decide.js'
import { dueNotices } from '../../src/decision/scheduler.js'
import { World } from '../../src/decision/world.js'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import type { KillSwitchRef, LedgerEvent } from '../../src/domain/events.js'
import {
  actionDigestFor,
  bindingData,
  EXECUTING_IDENTITY,
  LedgerBuilder,
  planHash,
  proposalData,
} from '../support/ledger-events.js'

/** a world over a map, scanned in key order in pages like a document store */
const worldOver = (docs: Map<string, unknown>) =>
  new World(
    (key) => docs.get(key),
    (prefix, { after, limit } = {}) =>
      [...docs]
        .filter(([key]) => key.startsWith(prefix) && (after === undefined || key > after))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, limit ?? Number.POSITIVE_INFINITY),
  )

/** given(events): folds them through decide like the service does, and keeps every answer. */
const given = (events: readonly LedgerEvent[]) => {
  const docs = new Map<string, unknown>()
  const answers: Output[][] = []
  const apply = (event: LedgerEvent): Output[] => {
    const world = worldOver(docs)
    const outputs = decideAndEvolve(world, event)
    for (const [key, doc] of world.changed()) {
      if (doc === null) docs.delete(key)
      else docs.set(key, doc)
    }
    return outputs
  }
  /** The answers, appended and read back in ledger order, as the service's own are. */
  const readBack = (event: LedgerEvent, outputs: readonly Output[]) => {
    for (const o of outputs) {
      const data = o.type === 'VerdictIssued' ? { ...o.data, signature: 'x.y.z' } : o.data
      apply({ ...event, stream: o.stream, type: o.type, data } as LedgerEvent)
    }
  }
  const step = (event: LedgerEvent): Output[] => {
    const outputs = apply(event)
    readBack(event, outputs)
    answers.push(outputs)
    return outputs
  }
  for (const event of events) step(event)
  /** Decides an event whose answers reach the ledger only later, after other events (`readBack`). */
  const decidedOnly = (event: LedgerEvent): Output[] => apply(event)
  return { when: step, decidedOnly, readBack, answers, world: () => worldOver(docs) }
}

const verdicts = (outputs: readonly Output[]) => outputs.filter((o) => o.type === 'VerdictIssued')
const lastVerdict = (answers: readonly Output[][]) => {
  const all = answers.flat().filter((o) => o.type === 'VerdictIssued')
  const last = all.at(-1)
  assert.ok(last?.type === 'VerdictIssued', 'a verdict was issued')
  return last.data
}

const P = 'p-1'
const AGENT = 'agent-1'
const DIGEST = actionDigestFor({ proposalId: P })

/** A high-impact proposal by an agent at execute, with every piece of evidence the default policy asks. */
const fullyEvidenced = (b = new LedgerBuilder(), proposalId = P): LedgerEvent[] => [
  b.event('PolicyPublished', { ...defaultPolicy('policy-admin'), publishedBy: 'admin-1', approvedBy: null }),
  b.event('ToolActionRegistered', { tool: 'kubectl', action: 'scale', impact: 'high', reversible: true }),
  b.event('AgentRegistered', { agentId: AGENT, owner: 'platform' }),
  ...(['recommend', 'simulate', 'execute'] as const).flatMap((to, i) => {
    const from = (['observe', 'recommend', 'simulate'] as const)[i] ?? 'observe'
    const promotion = { agentId: AGENT, requestId: `r-${i}`, environment: 'production' }
    return [
      b.event('PromotionRequested', { ...promotion, from, to, trackRecord, requestedBy: AGENT }),
      b.event('PromotionApproved', { ...promotion, approvedBy: 'admin-1' }),
      b.event('PromotionApproved', { ...promotion, approvedBy: 'admin-2' }),
      b.event('AgentPromoted', {
        ...promotion,
        from,
        to,
        approvedBy: 'admin-2',
        endorsedBy: ['admin-1', 'admin-2'],
      }),
    ]
  }),
  b.event('IdentityBound', bindingData(AGENT)),
  b.event('IdentityBound', bindingData('executor-1', EXECUTING_IDENTITY, 'executor')),
  b.event('ScopeGranted', {
    grantId: 'g-1',
    identity: 'svc-deployer',
    tool: 'kubectl',
    action: 'scale',
    resourcePattern: 'deployment/web',
    environment: 'production',
    via: 'direct',
  }),
  b.event('StateObserved', {
    environment: 'production',
    resource: 'deployment/web',
    version: 'v41',
    digest: 'd41',
    observedAt: '2024-05-01T10:00:00.000Z',
  }),
  ...evidenceFor(b, proposalId),
]

const trackRecord = {
  windowStart: '2024-04-01T00:00:00.000Z',
  windowEnd: '2024-05-01T00:00:00.000Z',
  proposals: 12,
  simulationsPassed: 6,
  simulationSurvivalRate: 1,
  violations: 0,
  failedExecutions: 0,
}

/** The proposal, then its evidence: a simulation the agent requested, a rollback test, one approval. */
const evidenceFor = (b: LedgerBuilder, proposalId: string): LedgerEvent[] => [
  b.after(10).event('ProposalSubmitted', proposalData({ proposalId })),
  b.after(5).event(
    'SimulationRequested',
    {
      proposalId,
      requestId: `simreq-${proposalId}`,
      actionDigest: actionDigestFor({ proposalId }),
      branchKinds: ['dependency-down', 'partial-failure', 'stale-read'],
    },
    { actor: AGENT },
  ),
  b.after(5).event('SimulationRecorded', {
    proposalId,
    simulationId: `sim-${proposalId}`,
    requestId: `simreq-${proposalId}`,
    actionDigest: actionDigestFor({ proposalId }),
    simulatedBy: 'simulator-1',
    branches: (['dependency-down', 'partial-failure', 'stale-read'] as const).map((kind) => ({
      name: kind,
      kind,
      counterfactual: `what if ${kind}`,
      outcome: 'survived' as const,
    })),
  }),
  b.after(10).event('RollbackTested', {
    proposalId,
    actionDigest: actionDigestFor({ proposalId }),
    testedBy: 'simulator-1',
    playbook: 'scale back to 2',
    testRunId: `run-${proposalId}`,
    testedAt: '2024-05-01T09:00:00.000Z',
    outcome: 'passed',
    expectedRecoverySeconds: 120,
    killSwitch: { scope: 'tool', target: 'kubectl' },
  }),
  b.after(10).event('ApprovalGranted', {
    proposalId,
    actionDigest: actionDigestFor({ proposalId }),
    approver: 'approver-1',
    role: 'approver',
  }),
]

describe('the decision service', () => {
  test('evidence arrives check by check, and each new verdict supersedes the last', () => {
    const { answers } = given(fullyEvidenced())
    const issued = answers.flatMap(verdicts).map((o) => o.data)
    assert.deepEqual(
      issued.map((v) => [v.revision, v.decision]),
      [
        [1, 'block'],
        [2, 'block'],
        [3, 'block'],
        [4, 'allow'],
      ],
    )
    assert.deepEqual(
      issued.map((v) => v.supersedes),
      [null, ...issued.slice(0, -1).map((v) => v.verdictId)],
    )
    const first = issued[0]
    assert.ok(first)
    assert.deepEqual(
      first.checks.filter((c) => c.status === 'fail').map((c) => c.check),
      ['survival', 'rollback', 'lineage'],
      'the first verdict says exactly what is missing',
    )
    assert.equal(issued.at(-1)?.planHash, planHash)
    assert.equal(issued.at(-1)?.actionDigest, DIGEST)
    assert.equal(issued.at(-1)?.executingIdentity, EXECUTING_IDENTITY)
    assert.equal(issued.at(-1)?.resourceVersion, 'v41')
    assert.equal(issued.at(-1)?.policyVersion, 1)
  })

  test('the verdict names the action it allows: its digest, the executing identity and every field the digest covers', () => {
    const { answers, world } = given(fullyEvidenced())
    const verdict = lastVerdict(answers)
    const submitted = proposalData({ proposalId: P })
    assert.deepEqual(
      {
        proposalId: verdict.proposalId,
        agentId: verdict.agentId,
        executingIdentity: verdict.executingIdentity,
        tool: verdict.tool,
        action: verdict.action,
        resource: verdict.resource,
        environment: verdict.environment,
        planHash: verdict.planHash,
        actionDigest: verdict.actionDigest,
      },
      {
        proposalId: P,
        agentId: AGENT,
        executingIdentity: submitted.executingIdentity,
        tool: submitted.tool,
        action: submitted.action,
        resource: submitted.resource,
        environment: submitted.environment,
        planHash: submitted.planHash,
        actionDigest: submitted.actionDigest,
      },
    )
    assert.equal(world().proposal(P)?.verdict?.actionDigest, DIGEST)
  })

  test('an IdentityUnbound of the agent re-decides its open proposals to a block on lineage, and a new binding restores the allow', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given([...fullyEvidenced(b), ...evidenceFor(b, 'p-2')])
    assert.equal(lastVerdict(answers).decision, 'allow')
    const out = when(
      b
        .after(5)
        .event(
          'IdentityUnbound',
          { principal: AGENT, role: 'agent', identity: EXECUTING_IDENTITY, reason: 'rotated' },
          { actor: 'admin-1' },
        ),
    )
    const reissued = verdicts(out).map((o) => o.data)
    assert.deepEqual(
      reissued.map((v) => [v.proposalId, v.decision]),
      [
        [P, 'block'],
        ['p-2', 'block'],
      ],
    )
    for (const v of reissued) {
      assert.deepEqual(
        v.checks.filter((c) => c.status === 'fail').map((c) => c.check),
        ['lineage'],
      )
      assert.match(
        String(v.checks.find((c) => c.check === 'lineage')?.reason),
        /executing identity svc-deployer is no longer bound to agent agent-1/,
      )
    }
    const rebound = verdicts(when(b.after(5).event('IdentityBound', bindingData(AGENT)))).map((o) => o.data)
    assert.deepEqual(
      rebound.map((v) => [v.proposalId, v.decision]),
      [
        [P, 'allow'],
        ['p-2', 'allow'],
      ],
    )
  })

  test('an executor binding, or an agent binding of another identity, re-decides nothing', () => {
    const b = new LedgerBuilder()
    const { when } = given(fullyEvidenced(b))
    const unbind = (principal: string, role: 'agent' | 'executor', identity: string) =>
      when(b.after(1).event('IdentityUnbound', { principal, role, identity, reason: 'tidy up' }))
    assert.deepEqual(unbind('executor-1', 'executor', EXECUTING_IDENTITY), [])
    assert.deepEqual(
      when(b.after(1).event('IdentityBound', bindingData('executor-2', EXECUTING_IDENTITY, 'executor'))),
      [],
    )
    assert.deepEqual(when(b.after(1).event('IdentityBound', bindingData(AGENT, 'svc-other'))), [])
    assert.deepEqual(unbind(AGENT, 'agent', 'svc-other'), [])
  })

  test("binding or unbinding another agent through the identity leaves this agent's allow as it is", () => {
    const b = new LedgerBuilder()
    const { when } = given(fullyEvidenced(b))
    const bound = verdicts(when(b.after(1).event('IdentityBound', bindingData('agent-9'))))
    const unbound = verdicts(
      when(
        b.after(1).event('IdentityUnbound', {
          principal: 'agent-9',
          role: 'agent',
          identity: EXECUTING_IDENTITY,
          reason: 'retired',
        }),
      ),
    )
    // an admin action about another agent never supersedes a live allow of this one
    assert.deepEqual([...bound, ...unbound], [])
  })

  test('a proposal through an identity the agent is not bound to is blocked on lineage', () => {
    const b = new LedgerBuilder()
    const events = fullyEvidenced(b).filter((e) => !(e.type === 'IdentityBound' && e.data.role === 'agent'))
    const { answers } = given(events)
    const verdict = lastVerdict(answers)
    assert.equal(verdict.decision, 'block')
    assert.deepEqual(
      verdict.checks.filter((c) => c.status === 'fail').map((c) => c.check),
      ['lineage'],
    )
  })

  test('a refused start is not an execution: no violation, no demotion, the allow still stands', () => {
    const b = new LedgerBuilder()
    const { when, world, answers } = given(fullyEvidenced(b))
    const { verdictId } = lastVerdict(answers)
    const refused = b.after(1).event('ExecutionRefused', {
      proposalId: P,
      executionId: 'x-1',
      verdictId,
      actionDigest: DIGEST,
      executor: 'intruder',
      reasons: [{ specification: 'startedByExecutor', reason: 'intruder holds no executor role' }],
    })
    assert.deepEqual(when(refused), [])
    assert.equal(world().proposal(P)?.phase, 'open')
    assert.equal(world().levelOf(AGENT, 'production'), 'execute')
  })

  test('a fact that changes no answer issues no verdict', () => {
    const b = new LedgerBuilder()
    const { when } = given(fullyEvidenced(b))
    const unrelatedGrant = b.after(1).event('ScopeGranted', {
      grantId: 'g-2',
      identity: 'someone-else',
      tool: 'kubectl',
      action: 'scale',
      resourcePattern: '*',
      environment: 'production',
      via: 'direct',
    })
    assert.deepEqual(when(unrelatedGrant), [])
  })

  test("the decision service's own events change nothing when read back", () => {
    const b = new LedgerBuilder()
    const { when, world, answers } = given(fullyEvidenced(b))
    const before = world().proposal(P)
    const verdict = lastVerdict(answers)
    assert.deepEqual(when(b.event('VerdictIssued', { ...verdict, signature: 'x.y.z' })), [])
    assert.deepEqual(world().proposal(P), before)
  })

  const scopes: Array<[string, KillSwitchRef, boolean]> = [
    ['global', { scope: 'global', target: null }, true],
    ['environment', { scope: 'environment', target: 'production' }, true],
    ['another environment', { scope: 'environment', target: 'staging' }, false],
    ['tool', { scope: 'tool', target: 'kubectl' }, true],
    ['another tool', { scope: 'tool', target: 'terraform' }, false],
    ['agent', { scope: 'agent', target: AGENT }, true],
    ['another agent', { scope: 'agent', target: 'agent-9' }, false],
  ]
  for (const [name, ref, inScope] of scopes) {
    test(`a ${name} kill switch ${inScope ? 'revokes' : 'leaves alone'} an unexecuted allow`, () => {
      const b = new LedgerBuilder()
      const { when, answers } = given(fullyEvidenced(b))
      const allow = lastVerdict(answers)
      const outputs = when(
        b.after(5).event('KillSwitchEngaged', { ...ref, reason: 'incident' }, { actor: 'admin-1' }),
      )
      if (!inScope) return assert.deepEqual(outputs, [])
      const revoked = outputs[0]
      assert.equal(outputs.length, 1)
      assert.ok(revoked?.type === 'VerdictRevoked')
      assert.equal(revoked.stream, `proposal-${P}`)
      assert.deepEqual(
        { ...revoked.data, reason: '' },
        { verdictId: allow.verdictId, proposalId: P, reason: '', killSwitch: ref },
      )
      assert.match(revoked.data.reason, /incident/)
    })
  }

  test('while a kill switch is engaged every new verdict in its scope is block, and release restores the allow', () => {
    const b = new LedgerBuilder()
    const { when } = given(fullyEvidenced(b))
    when(b.after(5).event('KillSwitchEngaged', { scope: 'global', target: null, reason: 'incident' }))
    const blocked = verdicts(
      when(
        b.after(5).event('ApprovalGranted', {
          proposalId: P,
          actionDigest: DIGEST,
          approver: 'approver-2',
          role: 'approver',
        }),
      ),
    )[0]?.data
    assert.equal(blocked?.decision, 'block')
    assert.equal(blocked?.checks.find((c) => c.check === 'killSwitch')?.status, 'fail')
    const released = verdicts(
      when(b.after(5).event('KillSwitchReleased', { scope: 'global', target: null, reason: 'resolved' })),
    )[0]?.data
    assert.equal(released?.decision, 'allow')
  })

  test('an execution citing the live allow is no violation', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given(fullyEvidenced(b))
    const { verdictId } = lastVerdict(answers)
    const start = b.after(5).event('ExecutionStarted', {
      proposalId: P,
      executionId: 'x-1',
      verdictId,
      actionDigest: DIGEST,
      executor: 'executor-1',
    })
    assert.deepEqual(when(start), [])
  })

  test('a newer verdict is in the ledger with its cause: a start still citing the one it superseded is a violation', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given(fullyEvidenced(b))
    const { verdictId, decidedAt } = lastVerdict(answers)
    // anyone re-observes the resource: the new verdict is appended in the same commit as the observation
    const observed = b.after(2).event('StateObserved', {
      environment: 'production',
      resource: 'deployment/web',
      version: 'v41',
      digest: 'd41',
      observedAt: decidedAt,
    })
    const [newer] = verdicts(when(observed))
    assert.ok(newer, 'the re-observation restates the allow')
    const start = b.after(1).event('ExecutionStarted', {
      proposalId: P,
      executionId: 'x-1',
      verdictId,
      actionDigest: DIGEST,
      executor: 'executor-1',
    })
    const [violation] = when(start)
    assert.equal(violation?.type, 'ViolationRecorded')
    assert.equal((violation?.data as { kind?: string } | undefined)?.kind, 'superseded')
  })

  test('an execution without a valid allow verdict becomes a violation, and the agent is demoted one rung', () => {
    const b = new LedgerBuilder()
    const { when } = given(fullyEvidenced(b))
    const outputs = when(
      b.after(5).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x-1',
        verdictId: null,
        actionDigest: DIGEST,
        executor: 'executor-1',
      }),
    )
    assert.deepEqual(
      outputs.map((o) => o.type),
      ['ViolationRecorded', 'AgentDemoted'],
    )
    const violation = outputs[0]
    assert.ok(violation?.type === 'ViolationRecorded')
    assert.equal(violation.data.kind, 'no-verdict')
    assert.equal(violation.data.responsible, 'executor-1', 'the violation names the principal that ran it')
    assert.equal(violation.data.agentId, AGENT, 'and the agent it ran for')
    const demoted = outputs[1]
    assert.ok(demoted?.type === 'AgentDemoted')
    assert.deepEqual(
      { from: demoted.data.from, to: demoted.data.to, cause: demoted.data.cause, stream: demoted.stream },
      { from: 'execute', to: 'simulate', cause: 'violation', stream: `agent-${AGENT}` },
    )
  })

  test('an execution citing a revoked verdict is a violation', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given(fullyEvidenced(b))
    const { verdictId } = lastVerdict(answers)
    when(b.after(1).event('KillSwitchEngaged', { scope: 'global', target: null, reason: 'stop' }))
    when(b.after(1).event('KillSwitchReleased', { scope: 'global', target: null, reason: 'resume' }))
    const out = when(
      b.after(1).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x',
        verdictId,
        actionDigest: DIGEST,
        executor: 'e',
      }),
    )
    // the release issued a new allow, so the revoked one is both revoked and superseded: superseded is named first
    assert.equal(out[0]?.type === 'ViolationRecorded' && out[0].data.kind, 'superseded')
  })

  test('an execution citing a verdict revoked by a switch still engaged is a violation of kind revoked', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given(fullyEvidenced(b))
    const { verdictId } = lastVerdict(answers)
    when(b.after(1).event('KillSwitchEngaged', { scope: 'agent', target: AGENT, reason: 'stop' }))
    const out = when(
      b.after(1).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x',
        verdictId,
        actionDigest: DIGEST,
        executor: 'e',
      }),
    )
    assert.equal(out[0]?.type === 'ViolationRecorded' && out[0].data.kind, 'revoked')
  })

  test('verdict expiry: an execution after the verdict expired is a violation', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given(fullyEvidenced(b))
    const { verdictId, expiresAt } = lastVerdict(answers)
    const late = b.at(expiresAt).event('ExecutionStarted', {
      proposalId: P,
      executionId: 'x',
      verdictId,
      actionDigest: DIGEST,
      executor: 'e',
    })
    const out = when(late)
    assert.equal(out[0]?.type === 'ViolationRecorded' && out[0].data.kind, 'expired')
  })

  test('verdict expiry: the scheduler announces a due allow, and the expired verdict no longer stands', () => {
    const b = new LedgerBuilder()
    const { when, world, answers } = given(fullyEvidenced(b))
    const { verdictId, expiresAt } = lastVerdict(answers)
    assert.deepEqual(dueNotices(world().deadlines(), new Date(Date.parse(expiresAt) - 1).toISOString()), [])
    const [notice] = dueNotices(world().deadlines(), expiresAt)
    assert.deepEqual(notice?.event.data, { verdictId, proposalId: P, expiresAt })
    when(b.at(expiresAt).event('VerdictExpired', { verdictId, proposalId: P, expiresAt }))
    assert.equal(world().proposal(P)?.verdict?.expired, true)
    assert.deepEqual(dueNotices(world().deadlines(), expiresAt), [], 'announced once')
  })

  test('an execution citing a block verdict, another plan, or an unknown verdict is a violation of that kind', () => {
    const cases: Array<
      [string, (ids: { allow: string; block: string }) => { verdictId: string; actionDigest: string }]
    > = [
      ['not-allowed', ({ block }) => ({ verdictId: block, actionDigest: DIGEST })],
      // the same plan, on another resource: another action
      [
        'mismatch',
        ({ allow }) => ({
          verdictId: allow,
          actionDigest: actionDigestFor({ proposalId: P, resource: 'database/payments-primary' }),
        }),
      ],
      [
        'unknown-verdict',
        () => ({ verdictId: '00000000-0000-4000-8000-000000000000', actionDigest: DIGEST }),
      ],
    ]
    for (const [kind, cite] of cases) {
      const b = new LedgerBuilder()
      const events = fullyEvidenced(b)
      const { when, answers } = given(events.slice(0, -1))
      const block = lastVerdict(answers).verdictId
      when(events.at(-1) as LedgerEvent)
      const allow = lastVerdict(answers).verdictId
      const c = cite({ allow, block })
      const out = when(
        b.after(1).event('ExecutionStarted', { proposalId: P, executionId: 'x', ...c, executor: 'e' }),
      )
      const expected = kind === 'not-allowed' ? 'superseded' : kind
      assert.equal(out[0]?.type === 'ViolationRecorded' && out[0].data.kind, expected, kind)
    }
    // a proposal whose only verdict is a block
    const b = new LedgerBuilder()
    const { when, answers } = given(fullyEvidenced(b).slice(0, -1))
    const { verdictId } = lastVerdict(answers)
    const out = when(
      b.after(1).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x',
        verdictId,
        actionDigest: DIGEST,
        executor: 'e',
      }),
    )
    assert.equal(out[0]?.type === 'ViolationRecorded' && out[0].data.kind, 'not-allowed')
  })

  test('a demotion re-decides the agent’s other open allows', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given([...fullyEvidenced(b), ...evidenceFor(b, 'p-2')])
    assert.equal(lastVerdict(answers).decision, 'allow')
    const out = when(
      b.after(1).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x',
        verdictId: null,
        actionDigest: DIGEST,
        executor: 'e',
      }),
    )
    const reissued = verdicts(out)
    assert.equal(reissued.length, 1)
    assert.equal(reissued[0]?.data.proposalId, 'p-2')
    assert.equal(reissued[0]?.data.decision, 'block')
    assert.match(String(reissued[0]?.data.checks.find((c) => c.check === 'authority')?.reason), /simulate/)
  })

  test('a failure not recovered within the recovery time objective demotes the agent', () => {
    const b = new LedgerBuilder()
    const { when, answers, world } = given(fullyEvidenced(b))
    const { verdictId } = lastVerdict(answers)
    when(
      b.after(1).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x',
        verdictId,
        actionDigest: DIGEST,
        executor: 'e',
      }),
    )
    const failed = b.after(30).event('ExecutionFailed', {
      proposalId: P,
      executionId: 'x',
      error: 'boom',
      resourceVersionAfter: null,
    })
    when(failed)
    const due = dueNotices(
      world().deadlines(),
      new Date(Date.parse(failed.recordedAt) + 900_000).toISOString(),
    )
    assert.equal(due.length, 1)
    const notice = due[0]?.event.data as { deadline: string; failedAt: string }
    const out = when(
      b.at(notice.deadline).event('RecoveryDeadlinePassed', { proposalId: P, executionId: 'x', ...notice }),
    )
    assert.deepEqual(
      out.map((o) => (o.type === 'AgentDemoted' ? [o.data.cause, o.data.from, o.data.to] : o.type)),
      [['unrecovered-failure', 'execute', 'simulate']],
    )
    assert.deepEqual(
      when(b.after(1).event('RecoveryDeadlinePassed', { proposalId: P, executionId: 'x', ...notice })),
      [],
      'once',
    )
  })

  test('a failure recovered in time demotes no one', () => {
    const b = new LedgerBuilder()
    const { when, answers, world } = given(fullyEvidenced(b))
    const { verdictId } = lastVerdict(answers)
    when(
      b.after(1).event('ExecutionStarted', {
        proposalId: P,
        executionId: 'x',
        verdictId,
        actionDigest: DIGEST,
        executor: 'e',
      }),
    )
    when(
      b.after(30).event('ExecutionFailed', {
        proposalId: P,
        executionId: 'x',
        error: 'boom',
        resourceVersionAfter: null,
      }),
    )
    when(b.after(30).event('RollbackStarted', { proposalId: P, rollbackId: 'rb', executionId: 'x' }))
    when(
      b
        .after(30)
        .event('RollbackCompleted', { proposalId: P, rollbackId: 'rb', resourceVersionAfter: 'v41' }),
    )
    assert.deepEqual(world().deadlines().recoveries, {})
    const out = when(
      b.after(900).event('RecoveryDeadlinePassed', {
        proposalId: P,
        executionId: 'x',
        failedAt: '2024-05-01T10:00:00.000Z',
        deadline: '2024-05-01T10:15:00.000Z',
      }),
    )
    assert.deepEqual(out, [])
  })

  test('the same ledger always gives the same answers', () => {
    const events = fullyEvidenced()
    assert.deepEqual(given(events).answers, given(events).answers)
  })
})

describe('deadlines', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString()
  /** commits a world's changes into the map, as the service does after a batch */
  const commit = (docs: Map<string, unknown>, world: World) => {
    for (const [key, doc] of world.changed()) {
      if (doc === null) docs.delete(key)
      else docs.set(key, doc)
    }
  }

  test('the scheduler reads only what is due, across many pages, and a moved or dropped deadline leaves no trace', () => {
    const docs = new Map<string, unknown>()
    const world = worldOver(docs)
    // 700 allows expiring one a minute, written in reverse so that key order alone sorts them
    for (let i = 699; i >= 0; i -= 1)
      world.setVerdictDeadline(`p${i}`, { verdictId: `v${i}`, expiresAt: at(i) })
    world.setRecoveryDeadline('failed', { executionId: 'x', failedAt: at(0), deadline: at(300) })
    commit(docs, world)

    const due = worldOver(docs).deadlines(at(299))
    assert.equal(Object.keys(due.verdicts).length, 300)
    assert.deepEqual(due.verdicts.p299, { verdictId: 'v299', expiresAt: at(299) })
    assert.equal(due.verdicts.p300, undefined)
    assert.deepEqual(due.recoveries, {})
    assert.deepEqual(Object.keys(worldOver(docs).deadlines(at(300)).recoveries), ['failed'])
    assert.equal(
      Object.keys(worldOver(docs).deadlines().verdicts).length,
      700,
      'without a time: every deadline',
    )

    // a new verdict moves the deadline; an execution drops it; a recovery drops its own
    const next = worldOver(docs)
    next.setVerdictDeadline('p0', { verdictId: 'v0b', expiresAt: at(1000) })
    next.setVerdictDeadline('p1', null)
    next.setRecoveryDeadline('failed', null)
    assert.equal(next.deadlines(at(0)).verdicts.p0, undefined, 'uncommitted changes are seen')
    commit(docs, next)
    const after = worldOver(docs).deadlines()
    assert.deepEqual(after.verdicts.p0, { verdictId: 'v0b', expiresAt: at(1000) })
    assert.equal(after.verdicts.p1, undefined)
    assert.deepEqual(after.recoveries, {})
    assert.equal(
      [...docs.keys()].filter((k) => k.startsWith('due:')).length,
      699,
      'one time-ordered key per deadline',
    )
    assert.equal([...docs.keys()].filter((k) => k.startsWith('deadline-')).length, 699)
  })
})

describe('release gates', () => {
  const GATE = {
    workflow: 'kubectl.scale',
    impacts: ['high' as const],
    runs: 3,
    survivalThreshold: 0.8,
    requiredBranchKinds: ['dependency-down' as const],
  }
  const gated = (version: number, gates: object[]) =>
    ({
      ...defaultPolicy('policy-admin', version),
      releaseGates: gates,
      publishedBy: 'admin-1',
      approvedBy: 'admin-2',
    }) as never
  const KINDS = ['dependency-down', 'partial-failure', 'stale-read'] as const

  /** A harness run for a new proposal: one branch of each kind, survived or failed as given. */
  const run = (
    b: LedgerBuilder,
    n: number,
    outcomes: readonly ('survived' | 'failed')[],
    options: { agentId?: string; kinds?: readonly (typeof KINDS)[number][]; simulatedBy?: string } = {},
  ): LedgerEvent[] => {
    const proposalId = `run-${n}`
    const kinds = options.kinds ?? KINDS
    return [
      b.after(10).event('ProposalSubmitted', proposalData({ proposalId, agentId: options.agentId })),
      b.after(5).event('SimulationRecorded', {
        proposalId,
        simulationId: `sim-run-${n}`,
        requestId: `simreq-run-${n}`,
        actionDigest: actionDigestFor({ proposalId }),
        simulatedBy: options.simulatedBy ?? 'simulator-1',
        branches: kinds.map((kind, i) => ({
          name: kind,
          kind,
          counterfactual: `what if ${kind}`,
          outcome: outcomes[i] ?? 'survived',
        })),
      }),
    ]
  }
  const ok = ['survived', 'survived', 'survived'] as const
  const bad = ['failed', 'failed', 'failed'] as const

  type Release = Extract<Output, { type: 'WorkflowReleased' | 'WorkflowReleaseRevoked' }>
  const releaseEvents = (outputs: readonly Output[]): Release[] =>
    outputs.filter((o): o is Release => o.type === 'WorkflowReleased' || o.type === 'WorkflowReleaseRevoked')
  const gateOf = (outputs: readonly Output[], proposalId = P) => {
    const last = verdicts(outputs)
      .map(
        (o) =>
          o.data as { proposalId: string; decision: string; checks: { check: string; status: string }[] },
      )
      .filter((v) => v.proposalId === proposalId)
      .at(-1)
    return last && [last.decision, last.checks.find((c) => c.check === 'releaseGate')?.status]
  }

  test('the gate opens, closes and reopens as the workflow survival changes, and the ledger shows each turn', () => {
    const b = new LedgerBuilder()
    const { when, answers } = given([...fullyEvidenced(b), b.event('PolicyPublished', gated(2, [GATE]))])
    // everything else is in place: the gate alone blocks, with its numbers
    const blocked = answers
      .flat()
      .filter((o) => o.type === 'VerdictIssued')
      .at(-1)?.data as {
      decision: string
      checks: { check: string; status: string; reason: string }[]
    }
    assert.equal(blocked.decision, 'block')
    assert.deepEqual(
      blocked.checks.filter((c) => c.status === 'fail').map((c) => c.check),
      ['releaseGate'],
    )
    assert.match(blocked.checks.find((c) => c.check === 'releaseGate')?.reason ?? '', /only 1 of 3 runs/)

    const second = run(b, 2, ok).flatMap(when)
    assert.deepEqual(releaseEvents(second), [], 'two runs of three: not yet')
    const third = run(b, 3, ok).flatMap(when)
    assert.deepEqual(
      releaseEvents(third).map((o) => [o.type, o.data.figures.runs, o.data.figures.survivalRate]),
      [['WorkflowReleased', 3, 1]],
    )
    assert.equal(releaseEvents(third)[0]?.data.simulationId, 'sim-run-3')
    assert.deepEqual(gateOf(third), ['allow', 'pass'], 'the open proposal is decided again, and allowed')

    // one run in which every branch fails: 6 of 9 survived over the last three runs, under 0.8
    const failing = run(b, 4, bad).flatMap(when)
    assert.deepEqual(
      releaseEvents(failing).map((o) => [o.type, o.data.figures.survived, o.data.figures.adversarial]),
      [['WorkflowReleaseRevoked', 6, 9]],
    )
    assert.deepEqual(gateOf(failing), ['block', 'fail'], 'the gate closes on the open proposal')

    // two good runs still count the failed one among the last three; the third good one pushes it out
    const fifth = [...run(b, 5, ok), ...run(b, 6, ok)].flatMap(when)
    assert.deepEqual(releaseEvents(fifth), [])
    const seventh = run(b, 7, ok).flatMap(when)
    assert.deepEqual(
      releaseEvents(seventh).map((o) => o.type),
      ['WorkflowReleased'],
    )
    assert.deepEqual(gateOf(seventh), ['allow', 'pass'], 'and reopens')
  })

  test('every required branch kind must have run: full survival without it is not a release', () => {
    const b = new LedgerBuilder()
    const gate = { ...GATE, requiredBranchKinds: ['dependency-down', 'rollback-failure'] }
    const { when } = given([...fullyEvidenced(b), b.event('PolicyPublished', gated(2, [gate]))])
    const outputs = [2, 3, 4].flatMap((n) => run(b, n, ok)).flatMap(when)
    assert.deepEqual(releaseEvents(outputs), [])
    const v = verdicts(outputs).at(-1)?.data as { checks: { check: string; reason: string }[] }
    assert.match(v.checks.find((c) => c.check === 'releaseGate')?.reason ?? '', /never run: rollback-failure/)
  })

  test("a per-agent gate counts the agent's own runs: another agent's runs release nothing for it", () => {
    const b = new LedgerBuilder()
    const { when } = given([
      ...fullyEvidenced(b),
      b.event('AgentRegistered', { agentId: 'agent-2', owner: 'platform' }),
      b.event('PolicyPublished', gated(2, [{ ...GATE, perAgent: true }])),
    ])
    const others = [2, 3, 4].flatMap((n) => run(b, n, ok, { agentId: 'agent-2' })).flatMap(when)
    assert.deepEqual(
      releaseEvents(others).map((o) => [o.type, o.data.agentId]),
      [['WorkflowReleased', 'agent-2']],
    )
    const mine = verdicts(others).map((o) => o.data as { agentId: string; decision: string })
    assert.deepEqual(
      mine.filter((v) => v.agentId === AGENT && v.decision === 'allow'),
      [],
      "agent-1's proposal is not allowed by agent-2's runs",
    )
    const own = [5, 6].flatMap((n) => run(b, n, ok)).flatMap(when)
    assert.deepEqual(
      releaseEvents(own).map((o) => [o.type, o.data.agentId]),
      [['WorkflowReleased', AGENT]],
    )
    assert.deepEqual(gateOf(own), ['allow', 'pass'])
  })

  test('a run the proposing agent attested itself counts for nothing, towards evidence or release', () => {
    const b = new LedgerBuilder()
    const { when, world } = given([...fullyEvidenced(b), b.event('PolicyPublished', gated(2, [GATE]))])
    const selfMade = [2, 3, 4].flatMap((n) => run(b, n, ok, { simulatedBy: AGENT })).flatMap(when)
    assert.deepEqual(releaseEvents(selfMade), [])
    assert.equal(world().workflowRuns('kubectl', 'scale', AGENT).all.length, 1, 'only the harness run counts')
  })

  test('a run that exercised no adversarial branch is no run: baseline-only simulations release nothing', () => {
    const b = new LedgerBuilder()
    const gate = { ...GATE, requiredBranchKinds: [] }
    const { when, world } = given([...fullyEvidenced(b), b.event('PolicyPublished', gated(2, [gate]))])
    // the agent asks for no adversarial branch; the harness runs the baseline alone, twice
    const baseline = [2, 3].flatMap((n) => {
      const [submitted, simulated] = run(b, n, ok)
      const data = simulated?.data as { branches: unknown[] }
      const branches = [
        { name: 'baseline', kind: 'baseline', counterfactual: 'as planned', outcome: 'survived' },
      ]
      return [submitted, { ...simulated, data: { ...data, branches } }] as LedgerEvent[]
    })
    const outputs = baseline.flatMap(when)
    assert.deepEqual(releaseEvents(outputs), [], 'nothing was put under pressure: no release')
    assert.equal(
      world().workflowRuns('kubectl', 'scale', AGENT).all.length,
      1,
      'only the adversarial run counts',
    )
    assert.deepEqual(gateOf(outputs, 'run-3')?.[1], 'fail')
  })

  test('one simulation recorded on several proposals counts as one run', () => {
    const b = new LedgerBuilder()
    const { when, world } = given([...fullyEvidenced(b), b.event('PolicyPublished', gated(2, [GATE]))])
    // the same simulation id, recorded on two more proposals of the workflow
    const again = [2, 3].flatMap((n) => {
      const [submitted, simulated] = run(b, n, ok)
      const data = simulated?.data as { simulationId: string }
      return [submitted, { ...simulated, data: { ...data, simulationId: `sim-${P}` } }] as LedgerEvent[]
    })
    const outputs = again.flatMap(when)
    assert.deepEqual(releaseEvents(outputs), [], 'one run of three: no release')
    assert.equal(world().workflowRuns('kubectl', 'scale', AGENT).all.length, 1)
  })

  test('a policy that changes no gate judges no release again: nothing of the workflows is read', () => {
    const b = new LedgerBuilder()
    const { when, world } = given([
      ...fullyEvidenced(b),
      b.event('AgentRegistered', { agentId: 'agent-2', owner: 'platform' }),
      b.event('PolicyPublished', gated(2, [GATE, { ...GATE, workflow: '*', perAgent: true }])),
      ...[2, 3, 4].flatMap((n) => run(b, n, ok, { agentId: n === 3 ? 'agent-2' : AGENT })),
    ])
    const stored = world()
    const read: string[] = []
    const counting = new World(
      (key) => {
        read.push(key)
        return stored.get('policy', key)
      },
      (prefix) => {
        read.push(`${prefix}*`)
        return []
      },
    )
    // another verdict lifetime, the same gates: every release stands as it stood
    const same = gated(3, [GATE, { ...GATE, workflow: '*', perAgent: true }])
    decide(counting, b.event('PolicyPublished', { ...(same as object), verdictTtlSeconds: 300 } as never))
    assert.deepEqual(
      read.filter((key) => key.startsWith('runs') || key.startsWith('released')),
      [],
    )
    // and a gate added is judged on the runs already recorded, for each agent under a per-agent gate
    const added = when(
      b.event(
        'PolicyPublished',
        gated(4, [GATE, { ...GATE, workflow: '*', perAgent: true }, { ...GATE, impacts: ['low'], runs: 1 }]),
      ),
    )
    assert.deepEqual(
      releaseEvents(added).map((o) => [o.type, o.data.gate.impacts, o.data.agentId]),
      [['WorkflowReleased', ['low'], null]],
    )
  })

  test('a policy that drops the gate ends the release; one that adds a gate releases on the runs already recorded', () => {
    const b = new LedgerBuilder()
    const { when } = given([
      ...fullyEvidenced(b),
      ...run(b, 2, ok),
      ...run(b, 3, ok),
      b.event('PolicyPublished', gated(2, [GATE])),
    ])
    const stricter = when(b.event('PolicyPublished', gated(3, [{ ...GATE, runs: 4 }])))
    assert.deepEqual(
      releaseEvents(stricter).map((o) => [o.type, o.data.policyVersion, o.data.simulationId]),
      [['WorkflowReleaseRevoked', 3, null]],
    )
    assert.match(releaseEvents(stricter)[0]?.data.reason ?? '', /no longer applies/)
    assert.deepEqual(gateOf(stricter), ['block', 'fail'])
    const looser = when(b.event('PolicyPublished', gated(4, [{ ...GATE, runs: 2 }])))
    assert.deepEqual(
      releaseEvents(looser).map((o) => [o.type, o.data.policyVersion, o.data.figures.runs]),
      [['WorkflowReleased', 4, 2]],
    )
    assert.deepEqual(gateOf(looser), ['allow', 'pass'])
  })
})
