import { rungBelow } from '../domain/authority.js'
import { canonicalize } from '../domain/canonical.js'
import { evaluate } from '../domain/eligibility.js'
import {
  clipReason,
  type DataOf,
  ImpactClass,
  type KillSwitchRef,
  type ReleaseGate,
  streams,
} from '../domain/events.js'
import { uuidFromName } from '../domain/ids.js'
import { describeRelease, gatesFor, isReleased, releaseFigures } from '../domain/release.js'
import { type AnswerPart, type Evolving, evolveWorld, fingerprintOf, isAnswer } from './apply.js'
import { keys, type Ledgered, type OpenEntry, type ProposalDoc, type Released, type World } from './world.js'

export type UnsignedVerdict = Omit<DataOf<'VerdictIssued'>, 'signature'>

/** What the decision service appends in answer to one ledger event. */
export type Output =
  | { readonly stream: string; readonly type: 'VerdictIssued'; readonly data: UnsignedVerdict }
  | { readonly stream: string; readonly type: 'VerdictRevoked'; readonly data: DataOf<'VerdictRevoked'> }
  | {
      readonly stream: string
      readonly type: 'ViolationRecorded'
      readonly data: DataOf<'ViolationRecorded'>
    }
  | { readonly stream: string; readonly type: 'AgentDemoted'; readonly data: DataOf<'AgentDemoted'> }
  | {
      readonly stream: string
      readonly type: 'WorkflowReleased' | 'WorkflowReleaseRevoked'
      readonly data: DataOf<'WorkflowReleased'>
    }

/**
 * decide(world, event): the answers to an event, judged on the world as the ledger stood just before it. Read-only:
 * it folds the event, and each answer as it gives it, into a layer of its own, so that a later rule reads what an
 * earlier answer changed (a demotion, then the demoted agent's other allows). The same world and event always give
 * the same answers, and time comes only from the event's recordedAt, so replaying the ledger reproduces each one.
 */
export const decide = (world: World, event: Ledgered): Output[] => judge(world, event, 'all').outputs

/**
 * How a re-decider folds: `commit` on the write path, where the answers it decides are the ledger's; `what-if` for
 * one that decides beside the ledger (replay, counterfactual and shadow policies), which folds the answers it
 * decides, and of the ledger's answers only the verdicts recorded, which the ledger's starts were judged against.
 */
export type Folding = 'commit' | 'what-if'

/** Decides an event and folds it and the answers it decides into the world: what every re-decider does. */
export const decideAndEvolve = (world: World, event: Ledgered, folding: Folding = 'commit'): Output[] => {
  if (isAnswer(event)) {
    if (folding === 'what-if') evolveWorld(world, event, 'recorded')
    return []
  }
  const { outputs, after } = judge(world, event, folding === 'commit' ? 'all' : 'decided')
  world.adopt(after)
  return outputs
}

/** The answers to an event, and the layer over `before` that holds the event and those answers folded in. */
const judge = (before: World, event: Ledgered, part: AnswerPart): { outputs: Output[]; after: World } => {
  const world = before.layer()
  if (isAnswer(event)) return { outputs: [], after: world }
  evolveWorld(world, event)
  const answer = (outputs: readonly Output[]): Output[] => {
    for (const output of outputs)
      evolveWorld(world, { ...output, recordedAt: event.recordedAt } as Evolving, part)
    return [...outputs]
  }
  return { outputs: rules(before, world, event, answer), after: world }
}

/** Folds answers into the world as they are given, and returns them. */
type Answer = (outputs: readonly Output[]) => Output[]

/** The rules: which answers an event calls for, read on the world before it and after it (with earlier answers). */
const rules = (before: World, world: World, event: Ledgered, answer: Answer): Output[] => {
  const reevaluate = (ids: readonly string[]) =>
    ids.flatMap((id) => answer(reevaluateProposal(world, id, event)))
  switch (event.type) {
    case 'SimulationRecorded': {
      // a run can release its workflow, or take the release back: then the workflow's open proposals change too
      const facts = world.proposal(event.data.proposalId)?.facts
      if (!facts) return []
      const releases = answer(
        judgeWorkflow(world, facts.tool, facts.action, facts.agentId, event.data.simulationId),
      )
      const others = releases.length > 0 ? world.openBy('tool', facts.tool, facts.action) : []
      return [...releases, ...reevaluate([...new Set([event.data.proposalId, ...others])])]
    }
    case 'ProposalSubmitted':
    case 'RollbackTested':
    case 'ApprovalGranted':
    case 'DecisionResumed':
      return reevaluate([event.data.proposalId])
    case 'StateObserved':
      return reevaluate(world.openBy('resource', event.data.environment, event.data.resource))
    case 'ToolActionRegistered':
      return reevaluate(world.openBy('tool', event.data.tool, event.data.action))
    case 'ScopeGranted':
      return reevaluate(world.openBy('identity', event.data.identity))
    case 'IdentityBound':
    case 'IdentityUnbound': {
      // only the bound agent's own proposals through that identity can change
      const { role, identity, principal } = event.data
      if (role !== 'agent') return []
      return reevaluate(
        world.openBy('identity', identity).filter((id) => world.proposal(id)?.facts.agentId === principal),
      )
    }
    case 'ScopeRevoked': {
      const identity = world.get('grant', keys.grant(event.data.grantId))?.identity
      return identity === undefined ? [] : reevaluate(world.openBy('identity', identity))
    }
    case 'PolicyPublished': {
      // the gates in force until this policy: those whose releases the new one may end or begin
      const previousGates = before.policy()?.releaseGates ?? []
      return [...answer(judgeReleasesUnder(world, previousGates)), ...reevaluate(world.openIds())]
    }
    case 'AgentPromoted':
      return reevaluate(world.openBy('agent', event.data.agentId, event.data.environment))
    case 'KillSwitchEngaged':
      return openWhere(world, (f) => covers(event.data, f)).flatMap((id) =>
        answer(revokeAllow(world, id, event.data)),
      )
    case 'KillSwitchReleased':
      return reevaluate(openWhere(world, (f) => covers(event.data, f)))
    case 'ExecutionStarted':
    case 'RecoveryDeadlinePassed': {
      const demotions = answer(
        event.type === 'ExecutionStarted'
          ? judgeExecution(world, event.data, event.recordedAt)
          : demoteForUnrecoveredFailure(before, world, event.data),
      )
      // a demoted agent's other open allows no longer stand: decide them again
      const demoted = demotions.flatMap((o) => (o.type === 'AgentDemoted' ? [o.data] : []))
      return [
        ...demotions,
        ...demoted.flatMap((d) => reevaluate(world.openBy('agent', d.agentId, d.environment))),
      ]
    }
    default:
      return []
  }
}

const openWhere = (world: World, match: (entry: OpenEntry) => boolean): string[] =>
  world
    .openEntries()
    .filter(match)
    .map((e) => e.proposalId)

export const covers = (ks: KillSwitchRef, f: Pick<OpenEntry, 'environment' | 'tool' | 'agentId'>): boolean =>
  ks.scope === 'global' ||
  (ks.scope === 'environment' && ks.target === f.environment) ||
  (ks.scope === 'tool' && ks.target === f.tool) ||
  (ks.scope === 'agent' && ks.target === f.agentId)

/** A new verdict when the answer changed, or when the last one no longer stands. */
const reevaluateProposal = (world: World, proposalId: string, event: Ledgered): Output[] => {
  const doc = world.proposal(proposalId)
  if (doc?.phase !== 'open') return []
  const { facts } = doc
  const now = event.recordedAt
  const result = evaluate({
    now,
    proposal: facts,
    agentLevel: world.levelOf(facts.agentId, facts.environment),
    tool: world.get('tool', keys.tool(facts.tool, facts.action)) ?? null,
    policy: world.policy(),
    grants: Object.values(world.get('grants', keys.grants(facts.executingIdentity))?.active ?? {}),
    identityBound: world.bound(facts.agentId, facts.executingIdentity),
    observation: world.get('resource', keys.resource(facts.environment, facts.resource))?.observation ?? null,
    simulations: doc.simulations,
    rollbackTests: doc.rollbackTests,
    approvals: doc.approvals,
    killSwitches: world.killSwitches(),
    workflowRuns: world.workflowRuns(facts.tool, facts.action, facts.agentId),
  })
  const fingerprint = fingerprintOf(result)
  const previous = doc.verdict
  const stands = previous !== null && !previous.revoked && !previous.expired && now < previous.expiresAt
  if (stands && previous.fingerprint === fingerprint) return []

  const revision = (previous?.revision ?? 0) + 1
  const verdict: UnsignedVerdict = {
    verdictId: uuidFromName(`verdict/${proposalId}/${revision}`),
    proposalId,
    revision,
    decision: result.decision,
    checks: result.checks,
    agentId: facts.agentId,
    executingIdentity: facts.executingIdentity,
    tool: facts.tool,
    action: facts.action,
    resource: facts.resource,
    environment: facts.environment,
    impact: result.impact,
    planHash: facts.planHash,
    actionDigest: facts.actionDigest,
    resourceVersion: result.resourceVersion,
    policyVersion: result.policyVersion,
    decidedAt: now,
    expiresAt: result.expiresAt,
    supersedes: previous?.verdictId ?? null,
    basedOnEventId: event.id,
  }
  return [{ stream: streams.proposal(proposalId), type: 'VerdictIssued', data: verdict }]
}

/** A kill switch revokes, by an event, every allow in its scope that has not been executed. */
const revokeAllow = (world: World, proposalId: string, ks: KillSwitchRef & { reason: string }): Output[] => {
  const doc = world.proposal(proposalId)
  if (doc?.verdict?.decision !== 'allow' || doc.verdict.revoked || doc.verdict.expired) return []
  const { verdictId } = doc.verdict
  const target = ks.target === null ? 'global kill switch' : `${ks.scope} kill switch on ${ks.target}`
  return [
    {
      stream: streams.proposal(proposalId),
      type: 'VerdictRevoked',
      data: {
        verdictId,
        proposalId,
        reason: clipReason(`${target} engaged: ${ks.reason}`),
        killSwitch: { scope: ks.scope, target: ks.target },
      },
    },
  ]
}

type Violation = Pick<DataOf<'ViolationRecorded'>, 'kind' | 'reason'>

/**
 * Why an execution start is not covered by a valid allow verdict; null when it is. It is judged against the
 * verdict the ledger held when the start was recorded, as the gate judged it: a verdict decided meanwhile but
 * appended after the start does not make a violation of a start the ledger allowed.
 */
export const violationOf = (
  doc: ProposalDoc,
  start: DataOf<'ExecutionStarted'>,
  now: string,
): Violation | null => {
  const cited = start.verdictId
  const v = doc.ledgerVerdict
  if (cited === null) return { kind: 'no-verdict', reason: 'the execution cited no verdict' }
  if (v === null || v.verdictId !== cited) {
    return doc.verdictIds.includes(cited)
      ? { kind: 'superseded', reason: `verdict ${cited} was superseded by ${v?.verdictId ?? 'none'}` }
      : { kind: 'unknown-verdict', reason: `verdict ${cited} was never issued for this proposal` }
  }
  if (v.decision !== 'allow') return { kind: 'not-allowed', reason: `verdict ${cited} is a block` }
  if (v.revoked) return { kind: 'revoked', reason: `verdict ${cited} was revoked` }
  if (v.expired || now >= v.expiresAt)
    return { kind: 'expired', reason: `verdict ${cited} expired at ${v.expiresAt}` }
  if (start.actionDigest !== v.actionDigest) {
    return {
      kind: 'mismatch',
      reason: `the execution's action ${start.actionDigest} is not the action ${v.actionDigest} allowed`,
    }
  }
  return null
}

/** Executions must cite a valid allow verdict: anything else is a violation, and the agent is demoted. */
const judgeExecution = (world: World, start: DataOf<'ExecutionStarted'>, now: string): Output[] => {
  const doc = world.proposal(start.proposalId)
  if (!doc) return []
  const violation = violationOf(doc, start, now)
  if (violation === null) return []
  const { agentId, environment } = doc.facts
  const recorded: Output = {
    stream: streams.proposal(start.proposalId),
    type: 'ViolationRecorded',
    data: {
      proposalId: start.proposalId,
      executionId: start.executionId,
      agentId,
      responsible: start.executor,
      verdictId: start.verdictId,
      ...violation,
    },
  }
  return [recorded, ...demote(world, agentId, environment, start.proposalId, 'violation', violation.reason)]
}

/** An execution that failed and was not recovered in time demotes its agent, once: judged as it stood before the notice. */
const demoteForUnrecoveredFailure = (
  before: World,
  world: World,
  notice: DataOf<'RecoveryDeadlinePassed'>,
): Output[] => {
  const doc = before.proposal(notice.proposalId)
  if (doc?.phase !== 'failed' || doc.demotedForFailure) return []
  if (doc.execution?.executionId !== notice.executionId) return []
  const reason = `execution ${notice.executionId} failed at ${notice.failedAt} and was not recovered by ${notice.deadline}`
  return demote(
    world,
    doc.facts.agentId,
    doc.facts.environment,
    notice.proposalId,
    'unrecovered-failure',
    reason,
  )
}

/** Demotion is automatic and one rung at a time; an agent at observe has nothing left to lose. */
const demote = (
  world: World,
  agentId: string,
  environment: string,
  proposalId: string,
  cause: DataOf<'AgentDemoted'>['cause'],
  reason: string,
): Output[] => {
  const from = world.levelOf(agentId, environment)
  if (from === null || from === 'observe') return []
  const to = rungBelow(from)
  return [
    {
      stream: streams.agent(agentId),
      type: 'AgentDemoted',
      data: { agentId, environment, from, to, cause, proposalId, reason },
    },
  ]
}

// ---------- release gates ----------

/**
 * A release is an event when it begins and when it ends: a workflow passes a gate of the policy in force, or
 * a released one stops passing it. Judged when a run of the workflow is recorded and when a policy is published.
 */
const judgeRelease = (
  world: World,
  release: Released,
  policyVersion: number,
  simulationId: string | null,
): Output[] => {
  const { gate, tool, action, agentId } = release
  const runs = world.workflowRuns(tool, action, agentId ?? '')
  const figures = releaseFigures(gate, agentId === null ? runs.all : runs.agent)
  const released = isReleased(figures)
  const key = keys.released(release)
  const stood = world.get('released', key) !== undefined
  if (released === stood) return []
  const data = {
    ...release,
    policyVersion,
    figures,
    simulationId,
    reason: describeRelease(release, agentId, figures),
  }
  const type = released ? 'WorkflowReleased' : 'WorkflowReleaseRevoked'
  return [{ stream: streams.workflow(tool, action), type, data }]
}

/** Every gate that can apply to the workflow, judged on its runs (the agent's own, under a per-agent gate). */
const judgeWorkflow = (
  world: World,
  tool: string,
  action: string,
  agentId: string,
  simulationId: string,
): Output[] => {
  const policy = world.policy()
  if (policy === null) return []
  return gatesFor(policy.releaseGates, { tool, action }, undefined, ImpactClass.options).flatMap((gate) =>
    judgeRelease(
      world,
      { gate, tool, action, agentId: gate.perAgent ? agentId : null },
      policy.version,
      simulationId,
    ),
  )
}

/**
 * Under a newly published policy, for each workflow with runs: a release by a gate the policy no longer applies
 * to it ends, and a gate it newly applies is judged on the runs already recorded. A gate that applied before
 * and still does was judged at every run since, so its releases stand as they are: a publish that changes no
 * gate reads nothing of the workflows.
 */
const judgeReleasesUnder = (world: World, previous: readonly ReleaseGate[]): Output[] => {
  const policy = world.policy()
  if (policy === null || canonicalize(previous) === canonicalize(policy.releaseGates)) return []
  return world.workflowsWithRuns().flatMap(([tool, action]) => {
    const before = gatesFor(previous, { tool, action }, undefined, ImpactClass.options)
    const after = gatesFor(policy.releaseGates, { tool, action }, undefined, ImpactClass.options)
    const ended = before
      .filter((gate) => !after.some((g) => sameGate(g, gate)))
      .flatMap((gate) => world.releases(gate, tool, action))
      .map((release): Output => {
        const figures = releaseFigures(release.gate, [])
        const reason = `policy v${policy.version} no longer applies this release gate to workflow ${tool}.${action}`
        const data = { ...release, policyVersion: policy.version, figures, simulationId: null, reason }
        return { stream: streams.workflow(tool, action), type: 'WorkflowReleaseRevoked', data }
      })
    const added = after.filter((gate) => !before.some((g) => sameGate(g, gate)))
    const agents = added.some((gate) => gate.perAgent) ? world.agentsWithRuns(tool, action) : []
    const judged = added.flatMap((gate) =>
      (gate.perAgent ? agents : [null]).flatMap((agentId) =>
        judgeRelease(world, { gate, tool, action, agentId }, policy.version, null),
      ),
    )
    return [...ended, ...judged]
  })
}

const sameGate = (a: ReleaseGate, b: ReleaseGate): boolean => canonicalize(a) === canonicalize(b)
