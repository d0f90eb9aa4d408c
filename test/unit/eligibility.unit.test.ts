import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  DEFAULT_PROMOTION,
  defaultPolicy,
  type Eligibility,
  type EligibilityInput,
  evaluate,
  globMatches,
} from '../../src/domain/eligibility.js'
import {
  ApprovalGranted,
  type AuthorityLevel,
  CheckName,
  CheckResult,
  type EvidenceCheck,
  type ImpactClass,
  type KillSwitchRef,
  PolicyPublished,
  ReleaseGate,
  RollbackTested,
  ScopeGranted,
  SimulationRecorded,
  StateObserved,
} from '../../src/domain/events.js'
import {
  AGENT,
  approval,
  branches,
  ENVIRONMENT,
  EXECUTING_IDENTITY,
  eligibleInput,
  grant,
  NOW,
  OTHER_ACTION_DIGEST,
  observation,
  POLICY_OWNER,
  proposal,
  policy as publishedPolicy,
  rollbackTest,
  secondsAfter,
  secondsBefore,
  simulation,
  TOOL,
} from '../support/eligibility-fixtures.js'

// ---------- reading a verdict ----------

const checkOf = (result: Eligibility, name: CheckName): CheckResult => {
  const found = result.checks.find((c) => c.check === name)
  assert.ok(found, `the verdict lists no ${name} check`)
  return found
}

const failing = (result: Eligibility): CheckName[] =>
  result.checks.filter((c) => c.status === 'fail').map((c) => c.check)

const assertBlockedOnlyBy = (result: Eligibility, ...checks: CheckName[]): void => {
  assert.equal(result.decision, 'block')
  assert.deepEqual(failing(result), checks)
}

const assertAllowed = (result: Eligibility): void => {
  assert.deepEqual(failing(result), [])
  assert.equal(result.decision, 'allow')
}

const assertCheck = (
  result: Eligibility,
  name: CheckName,
  status: CheckResult['status'],
  reason?: RegExp,
) => {
  const check = checkOf(result, name)
  assert.equal(check.status, status, `${name}: ${check.reason}`)
  if (reason) assert.match(check.reason, reason)
}

const deepFreeze = <T>(value: T): T => {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}

const EVIDENCE: EvidenceCheck[] = ['scopedPermission', 'freshState', 'survival', 'rollback', 'lineage']

// ---------- the rules ----------

describe('rule 1: authority is a ladder, and only execute may receive an allow', () => {
  for (const level of ['observe', 'recommend', 'simulate'] as const satisfies AuthorityLevel[]) {
    test(`an agent holding '${level}' is blocked on authority, and the reason names the level`, () => {
      const result = evaluate(eligibleInput('critical', { agentLevel: level }))
      assertBlockedOnlyBy(result, 'authority')
      assertCheck(
        result,
        'authority',
        'fail',
        new RegExp(`^agent ${AGENT} holds '${level}' in ${ENVIRONMENT}; an allow needs 'execute'$`),
      )
    })
  }

  test("an agent holding 'execute' is allowed", () => {
    const result = evaluate(eligibleInput('critical', { agentLevel: 'execute' }))
    assertAllowed(result)
    assertCheck(result, 'authority', 'pass', /holds 'execute' in production/)
  })

  test('an unregistered agent is blocked on authority', () => {
    const result = evaluate(eligibleInput('critical', { agentLevel: null }))
    assertBlockedOnlyBy(result, 'authority')
    assertCheck(result, 'authority', 'fail', /agent agent-a1 is not registered/)
  })
})

describe('rule 3: inventory and impact, deny by default', () => {
  test('an unregistered action is judged critical, fails inventory and is blocked even with complete evidence', () => {
    const result = evaluate(eligibleInput('critical', { tool: null, proposal: proposal('low') }))
    assert.equal(result.impact, 'critical')
    assertBlockedOnlyBy(result, 'inventory')
    assertCheck(result, 'inventory', 'fail', /kubectl\.scale is not registered.*deny by default.*'critical'/)
    for (const check of EVIDENCE) assertCheck(result, check, 'pass')
  })

  test("the impact is the higher of the inventory's and the proposal's", () => {
    const underDeclared = evaluate(eligibleInput('low', { tool: { impact: 'high', reversible: false } }))
    assert.equal(underDeclared.impact, 'high')
    assertCheck(
      underDeclared,
      'inventory',
      'pass',
      /registered as 'high' and irreversible.*expects 'low'.*judged as 'high'/,
    )
    const overDeclared = evaluate(eligibleInput('low', { proposal: proposal('high') }))
    assert.equal(overDeclared.impact, 'high')
    assertCheck(overDeclared, 'survival', 'pass')
  })
})

describe('rule 4: the five checks, each failing alone at critical', () => {
  test('all five passing at critical: allow, and every check passes with a reason', () => {
    const result = evaluate(eligibleInput('critical'))
    assertAllowed(result)
    assert.equal(result.impact, 'critical')
    for (const check of result.checks) assert.equal(check.status, 'pass', `${check.check}: ${check.reason}`)
  })

  test('scoped permission missing: only scopedPermission fails', () => {
    const result = evaluate(eligibleInput('critical', { grants: [] }))
    assertBlockedOnlyBy(result, 'scopedPermission')
    assertCheck(
      result,
      'scopedPermission',
      'fail',
      /^identity deploy-bot holds no grant for kubectl\.scale on db\/orders in production$/,
    )
  })

  test('fresh state missing: only freshState fails', () => {
    const result = evaluate(eligibleInput('critical', { observation: null }))
    assertBlockedOnlyBy(result, 'freshState')
    assertCheck(result, 'freshState', 'fail', /no observation of db\/orders in production.*snapshot v4/)
  })

  test('survival evidence missing: only survival fails', () => {
    const result = evaluate(eligibleInput('critical', { simulations: [] }))
    assertBlockedOnlyBy(result, 'survival')
    assertCheck(result, 'survival', 'fail', /no accepted simulation of action sha256:/)
  })

  test('tested rollback missing: only rollback fails', () => {
    const result = evaluate(eligibleInput('critical', { rollbackTests: [] }))
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(result, 'rollback', 'fail', /no rollback test is recorded for action sha256:/)
  })

  test('lineage missing: only lineage fails', () => {
    const result = evaluate(eligibleInput('critical', { approvals: [] }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(
      result,
      'lineage',
      'fail',
      /0 distinct approval\(s\) with role 'approver' of 2 required: too few approvals/,
    )
  })

  test('every failure is listed, not the first: three missing checks report three fails', () => {
    const result = evaluate(eligibleInput('critical', { grants: [], observation: null, approvals: [] }))
    assertBlockedOnlyBy(result, 'scopedPermission', 'freshState', 'lineage')
  })

  test('the verdict lists every check, in order, each a valid check result; the release gate only under a policy with gates', () => {
    const result = evaluate(eligibleInput('medium', { grants: [], agentLevel: 'observe' }))
    assert.deepEqual(
      result.checks.map((c) => c.check),
      CheckName.options.filter((c) => c !== 'releaseGate'),
    )
    for (const check of result.checks) CheckResult.parse(check)
    const gate = ReleaseGate.parse({ workflow: '*', impacts: ['high'], runs: 1, survivalThreshold: 0.9 })
    const gated = evaluate(
      eligibleInput('medium', { grants: [], policy: { ...publishedPolicy(), releaseGates: [gate] } }),
    )
    assert.deepEqual(
      gated.checks.map((c) => c.check),
      CheckName.options,
    )
    for (const check of gated.checks) CheckResult.parse(check)
  })
})

describe('rule 4: the default policy, per impact class', () => {
  const required: Record<ImpactClass, EvidenceCheck[]> = {
    read: [],
    low: ['scopedPermission', 'freshState'],
    medium: ['scopedPermission', 'freshState', 'rollback', 'lineage'],
    high: EVIDENCE,
    critical: EVIDENCE,
  }

  for (const [impact, checks] of Object.entries(required) as [ImpactClass, EvidenceCheck[]][]) {
    test(`'${impact}' requires exactly ${checks.length === 0 ? 'no evidence check' : checks.join(', ')}`, () => {
      const result = evaluate(eligibleInput(impact))
      assertAllowed(result)
      for (const check of EVIDENCE) {
        const expected = checks.includes(check) ? 'pass' : 'not-required'
        assertCheck(result, check, expected)
      }
    })
  }

  test("a 'read' action is allowed with authority alone, and no evidence at all", () => {
    const bare = { grants: [], observation: null, simulations: [], rollbackTests: [], approvals: [] }
    const result = evaluate(eligibleInput('read', bare))
    assertAllowed(result)
    for (const check of EVIDENCE)
      assertCheck(result, check, 'not-required', /^not required for 'read' impact by policy v1$/)
    assert.equal(evaluate(eligibleInput('read', { ...bare, agentLevel: 'recommend' })).decision, 'block')
  })

  test('the default policy, with who published and approved it, is a valid PolicyPublished event, with the documented thresholds', () => {
    const policy = defaultPolicy(POLICY_OWNER, 7)
    const published = { ...policy, publishedBy: 'admin-1', approvedBy: 'admin-2' }
    assert.deepEqual(PolicyPublished.shape.data.parse(published), published)
    assert.deepEqual(policy.promotion, DEFAULT_PROMOTION)
    assert.deepEqual(policy.promotionByEnvironment, {})
    assert.equal(policy.version, 7)
    assert.equal(defaultPolicy(POLICY_OWNER).version, 1)
    assert.equal(policy.owner, POLICY_OWNER)
    assert.deepEqual(policy.requirements.critical.approvals, { count: 2, roles: ['approver'] })
    assert.deepEqual(policy.requirements.high.approvals, { count: 1, roles: ['approver'] })
    assert.deepEqual(policy.requirements.medium.approvals, { count: 1, roles: ['approver'] })
    assert.equal(policy.requirements.read.approvals.count, 0)
    assert.equal(policy.requirements.low.approvals.count, 0)
    const { freshnessMaxAgeSeconds, minAdversarialBranches, survivalThreshold } = policy
    assert.deepEqual(
      { freshnessMaxAgeSeconds, minAdversarialBranches, survivalThreshold },
      { freshnessMaxAgeSeconds: 300, minAdversarialBranches: 3, survivalThreshold: 0.9 },
    )
    assert.equal(policy.rollbackTestMaxAgeSeconds, 604_800)
    assert.equal(policy.recoveryTimeObjectiveSeconds, 900)
    assert.equal(policy.verdictTtlSeconds, 600)
  })

  test('the fixture is valid ledger data, so the specifications test reachable inputs', () => {
    const input = eligibleInput('critical')
    for (const g of input.grants) ScopeGranted.shape.data.parse(g)
    StateObserved.shape.data.parse(input.observation)
    PolicyPublished.shape.data.parse(input.policy)
    for (const s of input.simulations) SimulationRecorded.shape.data.parse(s)
    for (const t of input.rollbackTests) RollbackTested.shape.data.parse(t)
    for (const a of input.approvals) ApprovalGranted.shape.data.parse(a)
  })
})

describe('lineage: approvals bound to the action, from distinct approvers, never from the agent side, through a bound identity', () => {
  test('critical with one approval: lineage fails', () => {
    const result = evaluate(eligibleInput('critical', { approvals: [approval('approver-1')] }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(
      result,
      'lineage',
      'fail',
      /1 distinct approval\(s\) with role 'approver' \(approver-1\) of 2 required/,
    )
  })

  test('critical approved twice by the same approver: lineage fails, the duplicate ignored', () => {
    const result = evaluate(
      eligibleInput('critical', { approvals: [approval('approver-1'), approval('approver-1')] }),
    )
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(
      result,
      'lineage',
      'fail',
      /of 2 required: too few approvals; ignored: approver-1 \(duplicate approver\)$/,
    )
  })

  test('critical approved by two distinct approvers: lineage passes and names the chain', () => {
    const result = evaluate(eligibleInput('critical'))
    assertAllowed(result)
    assertCheck(
      result,
      'lineage',
      'pass',
      /^policy v1 owned by policy-admin, executing identity deploy-bot, 2 distinct approval\(s\) with role 'approver' \(approver-1, approver-2\) of 2 required$/,
    )
  })

  test('high needs one approval', () => {
    assertAllowed(evaluate(eligibleInput('high', { approvals: [approval('approver-1')] })))
    const none = evaluate(eligibleInput('high', { approvals: [] }))
    assertBlockedOnlyBy(none, 'lineage')
    assertCheck(none, 'lineage', 'fail', /0 distinct approval\(s\).* of 1 required/)
  })

  test('an approval by the proposing agent is ignored, and the reason names it', () => {
    const result = evaluate(
      eligibleInput('critical', { approvals: [approval(AGENT), approval('approver-1')] }),
    )
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(result, 'lineage', 'fail', /ignored: agent-a1 \(approved by the proposing agent\)$/)
  })

  test('an approval by the executing identity is ignored, and the reason names it', () => {
    const approvals = [approval(EXECUTING_IDENTITY), approval('approver-1')]
    const result = evaluate(eligibleInput('critical', { approvals }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(result, 'lineage', 'fail', /ignored: deploy-bot \(approved by the executing identity\)$/)
  })

  test('approvals from the agent side never make up the count, however many there are', () => {
    const approvals = [approval(AGENT), approval(EXECUTING_IDENTITY), approval(AGENT, { role: 'sre' })]
    const result = evaluate(eligibleInput('high', { approvals }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(result, 'lineage', 'fail', /0 distinct approval\(s\).*too few approvals/)
  })

  test('an approval for another action digest does not count', () => {
    const approvals = [approval('approver-1'), approval('approver-2', { actionDigest: OTHER_ACTION_DIGEST })]
    const result = evaluate(eligibleInput('critical', { approvals }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(result, 'lineage', 'fail', /ignored: approver-2 \(for another action\)$/)
  })

  test('an executing identity no longer bound to the agent fails lineage, whatever the approvals', () => {
    const result = evaluate(eligibleInput('critical', { identityBound: false }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(
      result,
      'lineage',
      'fail',
      /\(approver-1, approver-2\) of 2 required: executing identity deploy-bot is no longer bound to agent agent-a1$/,
    )
  })

  test('an unbound identity and too few approvals are both named', () => {
    const result = evaluate(eligibleInput('critical', { identityBound: false, approvals: [] }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(result, 'lineage', 'fail', /no longer bound to agent agent-a1 and too few approvals$/)
  })

  test('lineage not required: an unbound identity does not fail it (the ledger refuses such proposals anyway)', () => {
    const result = evaluate(eligibleInput('low', { identityBound: false }))
    assertAllowed(result)
    assertCheck(result, 'lineage', 'not-required')
  })

  test('an approval in a role the policy does not accept does not count', () => {
    const approvals = [approval('approver-1'), approval('viewer-1', { role: 'viewer' })]
    const result = evaluate(eligibleInput('critical', { approvals }))
    assertBlockedOnlyBy(result, 'lineage')
    assertCheck(result, 'lineage', 'fail', /ignored: viewer-1 \(role 'viewer' is not accepted\)/)
  })
})

describe('scoped permission: an explicit grant; wildcards and inheritance do not satisfy high or critical', () => {
  const weakGrants = {
    'a wildcard resource pattern': grant({ grantId: 'grant-weak', resourcePattern: 'db/*' }),
    'a wildcard tool': grant({ grantId: 'grant-weak', tool: '*' }),
    'a wildcard action': grant({ grantId: 'grant-weak', action: '*' }),
    'a wildcard environment': grant({ grantId: 'grant-weak', environment: '*' }),
    'an inherited grant': grant({ grantId: 'grant-weak', via: 'inherited' }),
  }

  for (const [kind, weak] of Object.entries(weakGrants)) {
    for (const impact of ['high', 'critical'] as const) {
      test(`${kind} does not satisfy '${impact}'`, () => {
        const result = evaluate(eligibleInput(impact, { grants: [weak] }))
        assertBlockedOnlyBy(result, 'scopedPermission')
        const why = weak.via === 'inherited' ? 'inherited' : 'wildcard'
        assertCheck(
          result,
          'scopedPermission',
          'fail',
          new RegExp(
            `holds only grant-weak \\(${why}\\) for kubectl\\.scale on db/orders in production, and a wildcard or inherited grant does not satisfy '${impact}' impact$`,
          ),
        )
      })
    }

    test(`${kind} satisfies 'low'`, () => {
      const result = evaluate(eligibleInput('low', { grants: [weak] }))
      assertAllowed(result)
      assertCheck(result, 'scopedPermission', 'pass', /grant grant-weak .*enough for 'low' impact/)
    })
  }

  test('an exact direct grant beside a wildcard one satisfies critical, and is the one named', () => {
    const grants = [grant({ grantId: 'grant-weak', tool: '*' }), grant()]
    const result = evaluate(eligibleInput('critical', { grants }))
    assertAllowed(result)
    assertCheck(result, 'scopedPermission', 'pass', /holds an exact direct grant grant-exact/)
  })

  test('a grant for another resource, environment, action or identity does not match', () => {
    const grants = [
      grant({ resourcePattern: 'db/payments' }),
      grant({ environment: 'staging' }),
      grant({ action: 'delete' }),
      grant({ identity: 'someone-else' }),
    ]
    const result = evaluate(eligibleInput('low', { grants }))
    assertBlockedOnlyBy(result, 'scopedPermission')
    assertCheck(result, 'scopedPermission', 'fail', /holds no grant/)
  })

  test("a resource pattern is a glob: '*' matches any run of characters, everything else is literal", () => {
    assert.equal(globMatches('db/*', 'db/orders'), true)
    assert.equal(globMatches('db/*/primary', 'db/orders/eu/primary'), true)
    assert.equal(globMatches('*', ''), true)
    assert.equal(globMatches('a*b*c', 'abc'), true)
    assert.equal(globMatches('db/*', 'db'), false)
    assert.equal(globMatches('db.orders', 'dbXorders'), false)
    assert.equal(globMatches('db/[a-z]+', 'db/orders'), false)
    assert.equal(globMatches('db/orders', 'db/orders/replica'), false)
    assert.equal(globMatches(`${'*a'.repeat(200)}b`, 'a'.repeat(500)), false)
    assert.equal(
      evaluate(eligibleInput('low', { grants: [grant({ resourcePattern: 'db/*' })] })).decision,
      'allow',
    )
    assert.equal(
      evaluate(eligibleInput('low', { grants: [grant({ resourcePattern: 'db.*' })] })).decision,
      'block',
    )
  })
})

describe('fresh state: the latest observed version, younger than the maximum age', () => {
  test('a stale snapshot (older than the maximum age) blocks, naming both ages', () => {
    const result = evaluate(
      eligibleInput('critical', { observation: observation({ observedAt: secondsBefore(301) }) }),
    )
    assertBlockedOnlyBy(result, 'freshState')
    assertCheck(
      result,
      'freshState',
      'fail',
      /^the latest observation is 301 s old, over the 300 s maximum \(stale snapshot\)$/,
    )
  })

  test('a snapshot exactly at the maximum age is still fresh', () => {
    const result = evaluate(
      eligibleInput('critical', { observation: observation({ observedAt: secondsBefore(300) }) }),
    )
    assertAllowed(result)
    assertCheck(
      result,
      'freshState',
      'pass',
      /^snapshot v4 is the latest observed version of db\/orders, 300 s old \(maximum 300 s\)$/,
    )
  })

  test('a superseded snapshot (a newer version observed since) blocks', () => {
    const result = evaluate(eligibleInput('critical', { observation: observation({ version: 'v5' }) }))
    assertBlockedOnlyBy(result, 'freshState')
    assertCheck(
      result,
      'freshState',
      'fail',
      /based on version v4, but v5 was observed since \(superseded snapshot\)/,
    )
    assert.equal(result.resourceVersion, 'v5')
  })

  test('an observation dated after the decision (from the future) blocks, however recent', () => {
    for (const ahead of [1, 60]) {
      const future = observation({ observedAt: secondsAfter(ahead) })
      const result = evaluate(eligibleInput('critical', { observation: future }))
      assertBlockedOnlyBy(result, 'freshState')
      assertCheck(
        result,
        'freshState',
        'fail',
        new RegExp(
          `^the latest observation is dated ${secondsAfter(ahead).replace(/\./g, '\\.')}, after the decision time ${NOW.replace(/\./g, '\\.')}: an observation from the future confirms nothing$`,
        ),
      )
    }
  })

  test('an observation dated exactly at the decision time is fresh', () => {
    const result = evaluate(eligibleInput('critical', { observation: observation({ observedAt: NOW }) }))
    assertAllowed(result)
    assertCheck(result, 'freshState', 'pass', /, 0 s old \(maximum 300 s\)$/)
  })

  test('a snapshot both superseded and stale names both problems', () => {
    const stale = observation({ version: 'v5', observedAt: secondsBefore(900) })
    const result = evaluate(eligibleInput('low', { observation: stale }))
    assertBlockedOnlyBy(result, 'freshState')
    assertCheck(
      result,
      'freshState',
      'fail',
      /superseded snapshot.*900 s old, over the 300 s maximum \(stale snapshot\)/,
    )
  })
})

describe("survival under pressure: a simulator's simulation of this exact action", () => {
  test('too few adversarial branches fails', () => {
    const result = evaluate(
      eligibleInput('critical', { simulations: [simulation({ branches: branches(2) })] }),
    )
    assertBlockedOnlyBy(result, 'survival')
    assertCheck(
      result,
      'survival',
      'fail',
      /^simulation sim-1 by simulator-1 has 2 adversarial branches \(at least 3 required\), of which 2 survived, a survival rate of 1 \(threshold 0\.9\): too few adversarial branches$/,
    )
  })

  test('a survival rate below the threshold fails', () => {
    const result = evaluate(
      eligibleInput('critical', { simulations: [simulation({ branches: branches(10, 8) })] }),
    )
    assertBlockedOnlyBy(result, 'survival')
    assertCheck(
      result,
      'survival',
      'fail',
      /10 adversarial branches .* 8 survived, a survival rate of 0\.8 \(threshold 0\.9\): survival rate below threshold$/,
    )
  })

  test('a survival rate at the threshold passes', () => {
    const result = evaluate(
      eligibleInput('critical', { simulations: [simulation({ branches: branches(10, 9) })] }),
    )
    assertAllowed(result)
    assertCheck(result, 'survival', 'pass', /a survival rate of 0\.9 \(threshold 0\.9\)$/)
  })

  test('a simulation for another action digest is ignored', () => {
    const other = simulation({ simulationId: 'sim-other', actionDigest: OTHER_ACTION_DIGEST })
    const result = evaluate(eligibleInput('critical', { simulations: [other] }))
    assertBlockedOnlyBy(result, 'survival')
    assertCheck(
      result,
      'survival',
      'fail',
      /no accepted simulation .*; ignored: sim-other \(for another action\)$/,
    )
  })

  test('the latest accepted simulation is the one that counts', () => {
    const weak = simulation({ simulationId: 'sim-2', branches: branches(4, 1) })
    assertBlockedOnlyBy(
      evaluate(eligibleInput('critical', { simulations: [simulation(), weak] })),
      'survival',
    )
    assertAllowed(evaluate(eligibleInput('critical', { simulations: [weak, simulation()] })))
  })

  for (const level of ['recommend', 'simulate', 'execute'] as const) {
    test(`a simulation attested by the proposing agent is ignored, even at '${level}'`, () => {
      const own = simulation({ simulationId: 'sim-own', simulatedBy: AGENT })
      const result = evaluate(eligibleInput('critical', { agentLevel: level, simulations: [own] }))
      assertBlockedOnlyBy(result, ...(level === 'execute' ? [] : (['authority'] as const)), 'survival')
      assertCheck(result, 'survival', 'fail', /; ignored: sim-own \(attested by the proposing agent\)$/)
    })
  }

  test('a simulation attested by the executing identity is ignored', () => {
    const own = simulation({ simulationId: 'sim-identity', simulatedBy: EXECUTING_IDENTITY })
    const result = evaluate(eligibleInput('critical', { simulations: [own] }))
    assertBlockedOnlyBy(result, 'survival')
    assertCheck(result, 'survival', 'fail', /; ignored: sim-identity \(attested by the executing identity\)$/)
  })

  test("a simulator's simulation counts although a later one from the agent side was recorded", () => {
    const own = simulation({ simulationId: 'sim-own', simulatedBy: AGENT, branches: branches(10) })
    const result = evaluate(eligibleInput('critical', { simulations: [simulation(), own] }))
    assertAllowed(result)
    assertCheck(
      result,
      'survival',
      'pass',
      /^simulation sim-1 by simulator-1 .*; ignored: sim-own \(attested by the proposing agent\)$/,
    )
  })

  test('with no adversarial branch required, a baseline-only simulation survives', () => {
    const policy = { ...publishedPolicy(), minAdversarialBranches: 0 }
    const result = evaluate(
      eligibleInput('critical', { policy, simulations: [simulation({ branches: branches(0) })] }),
    )
    assertAllowed(result)
    assertCheck(
      result,
      'survival',
      'pass',
      /0 adversarial branches \(at least 0 required\).*survival rate of 1/,
    )
  })
})

describe('tested rollback: a recent passed test of this action, by a simulator or executor', () => {
  test('a passed test names its run id, the expected recovery time and the kill switch', () => {
    const result = evaluate(eligibleInput('critical'))
    assertCheck(
      result,
      'rollback',
      'pass',
      /^rollback test run run-7 passed 3600 s ago \(maximum 604800 s\), expects recovery in 120 s, and is stopped by the tool switch for kubectl$/,
    )
  })

  test('a failed test run fails', () => {
    const result = evaluate(
      eligibleInput('critical', { rollbackTests: [rollbackTest({ outcome: 'failed' })] }),
    )
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(result, 'rollback', 'fail', /^rollback test run run-7 at .* failed$/)
  })

  test('a test older than the maximum age fails', () => {
    const old = rollbackTest({ testedAt: secondsBefore(604_801) })
    const result = evaluate(eligibleInput('critical', { rollbackTests: [old] }))
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(result, 'rollback', 'fail', /run-7 is 604801 s old, over the 604800 s maximum/)
  })

  test('a test for another action digest does not count', () => {
    const other = rollbackTest({ actionDigest: OTHER_ACTION_DIGEST })
    const result = evaluate(eligibleInput('critical', { rollbackTests: [other] }))
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(
      result,
      'rollback',
      'fail',
      /no rollback test is recorded .*; 1 test run\(s\) for another action or from the agent's side ignored$/,
    )
  })

  for (const [who, testedBy] of [
    ['the proposing agent', AGENT],
    ['the executing identity', EXECUTING_IDENTITY],
  ] as const) {
    test(`a test attested by ${who} does not count`, () => {
      const own = rollbackTest({ testRunId: 'run-own', testedBy })
      const result = evaluate(eligibleInput('critical', { rollbackTests: [own] }))
      assertBlockedOnlyBy(result, 'rollback')
      assertCheck(
        result,
        'rollback',
        'fail',
        /^no rollback test is recorded for action sha256:[0-9a-f]{64}; 1 test run\(s\) for another action or from the agent's side ignored$/,
      )
    })
  }

  test("a later passed test from the agent side does not supersede a simulator's failed one", () => {
    const failed = rollbackTest({ outcome: 'failed' })
    const own = rollbackTest({ testRunId: 'run-own', testedBy: AGENT, testedAt: secondsBefore(60) })
    const result = evaluate(eligibleInput('critical', { rollbackTests: [failed, own] }))
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(result, 'rollback', 'fail', /^rollback test run run-7 at .* failed$/)
  })

  test('a test by an executor counts', () => {
    const result = evaluate(
      eligibleInput('critical', { rollbackTests: [rollbackTest({ testedBy: 'executor-1' })] }),
    )
    assertAllowed(result)
  })

  test('a test dated after the decision fails', () => {
    const future = rollbackTest({ testedAt: secondsAfter(10) })
    const result = evaluate(eligibleInput('critical', { rollbackTests: [future] }))
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(result, 'rollback', 'fail', /after the decision time/)
  })

  test('a later failed test supersedes an earlier passed one', () => {
    const later = rollbackTest({ testRunId: 'run-8', testedAt: secondsBefore(60), outcome: 'failed' })
    const result = evaluate(eligibleInput('critical', { rollbackTests: [rollbackTest(), later] }))
    assertBlockedOnlyBy(result, 'rollback')
    assertCheck(result, 'rollback', 'fail', /run-8/)
  })
})

describe('rule 5: kill switches', () => {
  const covering: Record<KillSwitchRef['scope'], [KillSwitchRef, RegExp]> = {
    global: [{ scope: 'global', target: null }, /the global switch/],
    environment: [{ scope: 'environment', target: ENVIRONMENT }, /the environment switch for production/],
    tool: [{ scope: 'tool', target: TOOL }, /the tool switch for kubectl/],
    agent: [{ scope: 'agent', target: AGENT }, /the agent switch for agent-a1/],
  }

  for (const [scope, [killSwitch, reason]] of Object.entries(covering)) {
    test(`an engaged ${scope} switch blocks, and is named`, () => {
      const result = evaluate(eligibleInput('critical', { killSwitches: [killSwitch] }))
      assertBlockedOnlyBy(result, 'killSwitch')
      assertCheck(result, 'killSwitch', 'fail', reason)
    })
  }

  test('switches for another environment, tool or agent do not block', () => {
    const killSwitches: KillSwitchRef[] = [
      { scope: 'environment', target: 'staging' },
      { scope: 'tool', target: 'terraform' },
      { scope: 'agent', target: 'agent-b2' },
    ]
    const result = evaluate(eligibleInput('critical', { killSwitches }))
    assertAllowed(result)
    assertCheck(result, 'killSwitch', 'pass', /\(3 engaged elsewhere\)$/)
  })

  test('several covering switches are all named', () => {
    const killSwitches: KillSwitchRef[] = [
      { scope: 'global', target: null },
      { scope: 'agent', target: AGENT },
    ]
    const result = evaluate(eligibleInput('read', { killSwitches }))
    assertBlockedOnlyBy(result, 'killSwitch')
    assertCheck(
      result,
      'killSwitch',
      'fail',
      /^engaged kill switches stop this proposal: the global switch, the agent switch for agent-a1$/,
    )
  })
})

describe('rule 9: fail closed', () => {
  test('with no policy published: block, the policy check fails, every evidence check fails, the verdict expires now', () => {
    const result = evaluate(eligibleInput('read', { policy: null }))
    assertBlockedOnlyBy(result, 'policy', ...EVIDENCE)
    assertCheck(result, 'policy', 'fail', /^no policy published: fail closed$/)
    for (const check of EVIDENCE) assertCheck(result, check, 'fail', /^no policy in force$/)
    assert.equal(result.expiresAt, NOW)
    assert.equal(result.policyVersion, null)
  })
})

describe('rule 6: the verdict is bound to versions and expires', () => {
  test('a verdict expires after the policy TTL when no evidence limits it', () => {
    assert.equal(evaluate(eligibleInput('read')).expiresAt, secondsAfter(600))
    const policy = { ...publishedPolicy(), verdictTtlSeconds: 120 }
    assert.equal(evaluate(eligibleInput('critical', { policy })).expiresAt, secondsAfter(120))
  })

  test('a verdict expires no later than its snapshot turns stale', () => {
    const result = evaluate(
      eligibleInput('critical', { observation: observation({ observedAt: secondsBefore(60) }) }),
    )
    assert.equal(result.expiresAt, secondsAfter(240))
  })

  test('a verdict expires no later than its rollback test turns too old', () => {
    const test = rollbackTest({ testedAt: secondsBefore(604_800 - 100) })
    assert.equal(evaluate(eligibleInput('critical', { rollbackTests: [test] })).expiresAt, secondsAfter(100))
  })

  test('a verdict never expires before it is decided', () => {
    const stale = observation({ observedAt: secondsBefore(900) })
    assert.equal(evaluate(eligibleInput('critical', { observation: stale })).expiresAt, NOW)
  })

  test('the expiry is an ISO time with milliseconds, whatever form now takes', () => {
    const result = evaluate(eligibleInput('read', { now: '2025-06-01T12:00:00Z' }))
    assert.equal(result.expiresAt, '2025-06-01T12:10:00.000Z')
  })

  test('the verdict names the resource version and policy version it is bound to', () => {
    const result = evaluate(eligibleInput('critical', { policy: publishedPolicy(4) }))
    assert.equal(result.resourceVersion, 'v4')
    assert.equal(result.policyVersion, 4)
    assert.equal(evaluate(eligibleInput('critical', { observation: null })).resourceVersion, null)
  })
})

describe('purity', () => {
  test('evaluate gives the same verdict twice, and does not mutate its input', () => {
    const inputs: EligibilityInput[] = [
      eligibleInput('critical'),
      eligibleInput('critical', {
        grants: [],
        approvals: [approval(AGENT)],
        killSwitches: [{ scope: 'global', target: null }],
      }),
      eligibleInput('low', { policy: null, tool: null, agentLevel: null, observation: null }),
    ]
    for (const input of inputs) {
      const before = structuredClone(input)
      const frozen = deepFreeze(input)
      const first = evaluate(frozen)
      assert.deepEqual(evaluate(frozen), first)
      assert.deepEqual(frozen, before)
    }
  })

  test('the verdict does not depend on the order of independent grants or kill switches', () => {
    const grants = [grant({ grantId: 'grant-weak', tool: '*' }), grant()]
    const a = evaluate(eligibleInput('critical', { grants }))
    const b = evaluate(eligibleInput('critical', { grants: [...grants].reverse() }))
    assert.deepEqual(a, b)
  })
})
