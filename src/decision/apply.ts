import { canonicalize } from '../domain/canonical.js'
import { simulationIgnoredBecause } from '../domain/eligibility.js'
import {
  type DataOf,
  DECISION_OUTPUT_TYPES,
  type KillSwitchRef,
  PROPOSAL_MAX_OPEN_SECONDS,
} from '../domain/events.js'
import { gateRun } from '../domain/release.js'
import { keys, type Ledgered, type ProposalDoc, type World } from './world.js'

const sameSwitch = (a: KillSwitchRef, b: KillSwitchRef) => a.scope === b.scope && a.target === b.target
const addSeconds = (iso: string, seconds: number) => new Date(Date.parse(iso) + seconds * 1000).toISOString()

/** What evolve reads of an event: a ledger event, or an answer the decision service is about to append. */
export type Evolving = Pick<Ledgered, 'type' | 'data' | 'recordedAt'>

/** Whether an event is one of the decision service's answers, which change its world as its other inputs do. */
export const isAnswer = (event: Pick<Ledgered, 'type'>): boolean => DECISION_OUTPUT_TYPES.has(event.type)

/**
 * Which part of an answer's effect is folded: `all` for the ledger's own answers (the write path, the projection
 * runner); a what-if re-decider folds the answers it decides as `decided` (every effect but the recorded verdict)
 * and the ledger's as `recorded` (the recorded verdict alone, which the ledger's starts were judged against).
 */
export type AnswerPart = 'all' | 'decided' | 'recorded'

/**
 * The decision service's one evolve: folds an event of the ledger into its world, a fact or one of its own
 * answers alike. The world is the fold of the ledger in ledger order, whoever folds it: the projection runner
 * off the request path, the write path over the batch it commits, replay over a copy of the ledger.
 */
export const evolveWorld = (world: World, event: Evolving, part: AnswerPart = 'all'): void => {
  if (isAnswer(event)) applyAnswer(world, event as Ledgered, part)
  else applyFact(world, event as Ledgered)
}

const applyFact = (world: World, event: Ledgered): void => {
  switch (event.type) {
    case 'AgentRegistered':
      world.put('agent', keys.agent(event.data.agentId), { levels: {} })
      return
    case 'AgentPromoted': {
      const agent = world.get('agent', keys.agent(event.data.agentId)) ?? { levels: {} }
      world.put('agent', keys.agent(event.data.agentId), {
        levels: { ...agent.levels, [event.data.environment]: event.data.to },
      })
      return
    }
    case 'ToolActionRegistered':
      world.put('tool', keys.tool(event.data.tool, event.data.action), {
        impact: event.data.impact,
        reversible: event.data.reversible,
      })
      return
    case 'ScopeGranted': {
      const key = keys.grants(event.data.identity)
      const grants = world.get('grants', key) ?? { active: {} }
      world.put('grants', key, { active: { ...grants.active, [event.data.grantId]: event.data } })
      world.put('grant', keys.grant(event.data.grantId), { identity: event.data.identity })
      return
    }
    case 'ScopeRevoked': {
      const identity = world.get('grant', keys.grant(event.data.grantId))?.identity
      if (identity === undefined) return
      const grants = world.get('grants', keys.grants(identity)) ?? { active: {} }
      const { [event.data.grantId]: _revoked, ...active } = grants.active
      world.put('grants', keys.grants(identity), { active })
      return
    }
    case 'IdentityBound':
    case 'IdentityUnbound': {
      if (event.data.role !== 'agent') return
      const { principal, identity } = event.data
      const key = keys.binding(identity)
      const others = (world.get('binding', key)?.agents ?? []).filter((a) => a !== principal)
      world.put('binding', key, { agents: event.type === 'IdentityBound' ? [...others, principal] : others })
      return
    }
    case 'PolicyPublished':
      world.put('policy', keys.policy(), event.data)
      return
    case 'KillSwitchEngaged': {
      const engaged = world.killSwitches().filter((s) => !sameSwitch(s, event.data))
      world.put('killSwitches', keys.killSwitches(), {
        engaged: [...engaged, { scope: event.data.scope, target: event.data.target }],
      })
      return
    }
    case 'KillSwitchReleased':
      world.put('killSwitches', keys.killSwitches(), {
        engaged: world.killSwitches().filter((s) => !sameSwitch(s, event.data)),
      })
      return
    case 'StateObserved': {
      const key = keys.resource(event.data.environment, event.data.resource)
      world.put('resource', key, { observation: event.data })
      return
    }
    case 'ProposalSubmitted': {
      const { plan: _plan, description: _description, ...facts } = event.data
      world.put('proposal', keys.proposal(facts.proposalId), {
        facts,
        phase: 'open',
        simulations: [],
        rollbackTests: [],
        approvals: [],
        verdict: null,
        verdictIds: [],
        ledgerVerdict: null,
        execution: null,
        demotedForFailure: false,
      })
      world.setOpen(facts, true)
      const limit = world.policy()?.proposalMaxOpenSeconds ?? PROPOSAL_MAX_OPEN_SECONDS
      world.setProposalDeadline(facts.proposalId, {
        submittedAt: event.recordedAt,
        deadline: addSeconds(event.recordedAt, limit),
      })
      return
    }
    case 'SimulationRecorded': {
      const doc = world.proposal(event.data.proposalId)
      if (!doc) return
      world.put('proposal', keys.proposal(event.data.proposalId), {
        ...doc,
        simulations: [...doc.simulations, event.data],
      })
      // a run counts towards its workflow's release as it counts as evidence: for this action, not the agent's side
      const { tool, action, agentId } = doc.facts
      if (simulationIgnoredBecause(event.data, doc.facts) === null) {
        world.recordRun(tool, action, agentId, gateRun(event.data))
      }
      return
    }
    case 'RollbackTested':
      world.updateProposal(event.data.proposalId, (p) => ({
        ...p,
        rollbackTests: [...p.rollbackTests, event.data],
      }))
      return
    case 'ApprovalGranted':
      world.updateProposal(event.data.proposalId, (p) => ({ ...p, approvals: [...p.approvals, event.data] }))
      return
    case 'VerdictExpired':
      world.updateProposal(event.data.proposalId, (p) => ({
        ...p,
        verdict: p.verdict?.verdictId === event.data.verdictId ? { ...p.verdict, expired: true } : p.verdict,
        ledgerVerdict:
          p.ledgerVerdict?.verdictId === event.data.verdictId
            ? { ...p.ledgerVerdict, expired: true }
            : p.ledgerVerdict,
      }))
      dropVerdictDeadline(world, event.data.proposalId)
      return
    case 'ExecutionStarted':
      close(world, event.data.proposalId, 'executing', {
        executionId: event.data.executionId,
        failedAt: null,
      })
      return
    case 'ExecutionSucceeded':
      world.updateProposal(event.data.proposalId, (p) => ({ ...p, phase: 'succeeded' }))
      return
    case 'ExecutionFailed': {
      const rto = world.policy()?.recoveryTimeObjectiveSeconds ?? 0
      const { proposalId, executionId } = event.data
      world.updateProposal(proposalId, (p) => ({
        ...p,
        phase: 'failed',
        execution: { executionId, failedAt: event.recordedAt },
      }))
      world.setRecoveryDeadline(proposalId, {
        executionId,
        failedAt: event.recordedAt,
        deadline: addSeconds(event.recordedAt, rto),
      })
      return
    }
    case 'RollbackCompleted': {
      const doc = world.proposal(event.data.proposalId)
      if (doc?.phase === 'failed') {
        world.updateProposal(event.data.proposalId, (p) => ({ ...p, phase: 'recovered' }))
        world.setRecoveryDeadline(event.data.proposalId, null)
      }
      return
    }
    case 'RecoveryDeadlinePassed':
      // the failure is judged once: a second notice for the same execution changes nothing
      world.updateProposal(event.data.proposalId, (p) =>
        p.phase === 'failed' && p.execution?.executionId === event.data.executionId
          ? { ...p, demotedForFailure: true }
          : p,
      )
      return
    case 'ProposalWithdrawn':
      close(world, event.data.proposalId, 'withdrawn', null)
      return
    case 'ProposalExpired':
      close(world, event.data.proposalId, 'expired', null)
      return
    default:
      // promotion requests and refusals, rollback starts and failures, deadline notices: no state the rules read
      return
  }
}

/**
 * A proposal leaves the open set once it executes, is withdrawn or expires: its allow can no longer expire
 * unused, nor the proposal itself. Only an open proposal closes: an expiry noticed after the start changes nothing.
 */
const close = (
  world: World,
  proposalId: string,
  phase: ProposalDoc['phase'],
  execution: ProposalDoc['execution'],
) => {
  const doc = world.proposal(proposalId)
  if (doc?.phase !== 'open') return
  world.put('proposal', keys.proposal(proposalId), { ...doc, phase, execution: execution ?? doc.execution })
  world.setOpen(doc.facts, false)
  dropVerdictDeadline(world, proposalId)
  if (world.proposalDeadline(proposalId)) world.setProposalDeadline(proposalId, null)
}

/** What a verdict's answer depends on: a new verdict with the same fingerprint changes nothing. */
export const fingerprintOf = (
  v: Pick<DataOf<'VerdictIssued'>, 'decision' | 'checks' | 'impact' | 'resourceVersion' | 'policyVersion'>,
): string => canonicalize([v.decision, v.checks, v.impact, v.resourceVersion, v.policyVersion])

/** The effect of one of the decision service's answers on its world. */
const applyAnswer = (world: World, event: Ledgered, part: AnswerPart): void => {
  if (part === 'recorded') {
    noteRecorded(world, event)
    return
  }
  switch (event.type) {
    case 'VerdictIssued': {
      const v = event.data
      world.updateProposal(v.proposalId, (p) => ({
        ...p,
        verdict: {
          verdictId: v.verdictId,
          revision: v.revision,
          decision: v.decision,
          actionDigest: v.actionDigest,
          expiresAt: v.expiresAt,
          fingerprint: fingerprintOf(v),
          revoked: false,
          expired: false,
        },
        verdictIds: [...p.verdictIds, v.verdictId],
      }))
      if (v.decision === 'allow') {
        world.setVerdictDeadline(v.proposalId, { verdictId: v.verdictId, expiresAt: v.expiresAt })
      } else {
        dropVerdictDeadline(world, v.proposalId)
      }
      break
    }
    case 'VerdictRevoked':
      world.updateProposal(event.data.proposalId, (p) =>
        p.verdict?.verdictId === event.data.verdictId
          ? { ...p, verdict: { ...p.verdict, revoked: true } }
          : p,
      )
      dropVerdictDeadline(world, event.data.proposalId)
      break
    case 'AgentDemoted': {
      const { agentId, environment, to } = event.data
      const agent = world.get('agent', keys.agent(agentId)) ?? { levels: {} }
      world.put('agent', keys.agent(agentId), { levels: { ...agent.levels, [environment]: to } })
      break
    }
    case 'WorkflowReleased':
    case 'WorkflowReleaseRevoked': {
      const { gate, tool, action, agentId } = event.data
      const release = { gate, tool, action, agentId }
      world.put('released', keys.released(release), event.type === 'WorkflowReleased' ? release : null)
      break
    }
    default:
      // a violation is a record for the auditors: nothing the rules read
      break
  }
  if (part === 'all') noteRecorded(world, event)
}

/** The verdict the ledger recorded, as the execution gate judged starts against it. */
const noteRecorded = (world: World, event: Ledgered): void => {
  if (event.type === 'VerdictIssued') {
    const { proposalId, verdictId, decision, actionDigest, expiresAt } = event.data
    world.updateProposal(proposalId, (p) => ({
      ...p,
      ledgerVerdict: { verdictId, decision, actionDigest, expiresAt, revoked: false, expired: false },
    }))
  } else if (event.type === 'VerdictRevoked') {
    world.updateProposal(event.data.proposalId, (p) =>
      p.ledgerVerdict?.verdictId === event.data.verdictId
        ? { ...p, ledgerVerdict: { ...p.ledgerVerdict, revoked: true } }
        : p,
    )
  }
}

export const dropVerdictDeadline = (world: World, proposalId: string): void => {
  if (world.verdictDeadline(proposalId)) world.setVerdictDeadline(proposalId, null)
}
