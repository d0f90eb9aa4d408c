import { type Actor, holds } from '../actor.js'
import { AUTHORITY_LADDER, type AuthorityLevel, type DataOf, type KillSwitchRef } from '../events.js'
import { specification } from '../specification.js'

/**
 * Who may do what to a proposal: each rule a named specification, demanded by the proposal decider. The
 * agent's word about itself is never evidence: state, simulations, rollback tests and approvals count only
 * from principals entitled to attest them, taken from their tokens.
 */

type Submitted = DataOf<'ProposalSubmitted'>

/** The principal of a command, and the proposal it acts on. */
export interface Acting {
  readonly actor: Actor
  readonly proposal: Submitted
}

/** A principal attesting evidence, and whether the ledger knows its subject as a registered agent. */
export interface Attesting extends Acting {
  readonly attesterIsAgent: boolean
}

/**
 * Evidence is never attested by the proposing agent, its executing identity, or any other agent: neither a
 * token holding the agent role nor a subject the ledger registered as an agent, whatever roles it presents.
 */
const notFromTheAgentSide = ({ actor, proposal, attesterIsAgent }: Attesting): string | null => {
  if (actor.sub === proposal.agentId)
    return `${actor.sub} proposed this action and cannot attest evidence for it`
  if (actor.sub === proposal.executingIdentity) {
    return `${actor.sub} is the action's executing identity and cannot attest evidence for it`
  }
  if (holds(actor, 'agent')) return `${actor.sub} holds the agent role, and an agent's word is not evidence`
  if (attesterIsAgent) return `${actor.sub} is a registered agent, and an agent's word is not evidence`
  return null
}

export const agentProposesAsItself = specification<{ actor: Actor; agentId: string }>(
  'agentProposesAsItself',
  'only an agent proposes, and only as itself',
  ({ actor, agentId }) => {
    if (!holds(actor, 'agent')) return `${actor.sub} holds no agent role: only an agent proposes`
    if (actor.sub !== agentId) return `${actor.sub} may propose only as itself, not as agent ${agentId}`
    return null
  },
)

export const proposerAboveObserve = specification<{
  agentId: string
  environment: string
  level: AuthorityLevel | null
}>(
  'proposerAboveObserve',
  "an agent proposes from the 'recommend' rung up; at 'observe' it may only read and observe",
  ({ agentId, environment, level }) =>
    level === 'observe' ? `observe may not propose: agent ${agentId} is observe in ${environment}` : null,
)

export const identityBoundToAgent = specification<{
  agentId: string
  executingIdentity: string
  boundAgents: readonly string[]
}>(
  'identityBoundToAgent',
  'an agent acts only through executing identities a policy admin bound to it',
  ({ agentId, executingIdentity, boundAgents }) =>
    boundAgents.includes(agentId)
      ? null
      : `executing identity ${executingIdentity} is not bound to agent ${agentId}: a policy admin binds the identities an agent may act through`,
)

export const proposerRequestsSimulation = specification<Acting & { level: AuthorityLevel | null }>(
  'proposerRequestsSimulation',
  "only the proposing agent, from the 'simulate' rung up, requests a simulation of its plan",
  ({ actor, proposal, level }) => {
    if (actor.sub !== proposal.agentId || !holds(actor, 'agent')) {
      return 'only the proposing agent may request a simulation of this action'
    }
    const rank = (l: AuthorityLevel) => AUTHORITY_LADDER.indexOf(l)
    if (level === null || rank(level) < rank('simulate')) {
      return `agent ${proposal.agentId} holds '${level ?? 'no level'}' in ${proposal.environment}; requesting a simulation needs 'simulate'`
    }
    return null
  },
)

export const simulatorAttestsSimulation = specification<Attesting>(
  'simulatorAttestsSimulation',
  'simulation results count only from a simulator, never from the agent side',
  (acting) =>
    holds(acting.actor, 'simulator')
      ? notFromTheAgentSide(acting)
      : `${acting.actor.sub} holds no simulator role: only the simulation harness records results`,
)

export const simulationAnswersRequest = specification<{ requestId: string; requests: readonly string[] }>(
  'simulationAnswersRequest',
  'simulation results answer a simulation the proposing agent requested',
  ({ requestId, requests }) =>
    requests.includes(requestId) ? null : `no simulation request ${requestId} was made for this proposal`,
)

export const testerAttestsRollback = specification<Attesting>(
  'testerAttestsRollback',
  'a rollback test counts only from the simulator or executor that ran it, never from the agent side',
  (acting) =>
    holds(acting.actor, 'simulator', 'executor')
      ? notFromTheAgentSide(acting)
      : `${acting.actor.sub} holds neither the simulator nor the executor role: only whoever ran the test records it`,
)

export const approverIsIndependent = specification<Attesting & { executors: readonly string[] }>(
  'approverIsIndependent',
  'an approver is never the proposer, its executing identity, an agent, or a principal that may execute it',
  (acting) => {
    const { actor, executors } = acting
    if (!holds(actor, 'approver')) return `${actor.sub} holds no approver role`
    const sided = notFromTheAgentSide(acting)
    if (sided !== null) return sided.replace('attest evidence for', 'approve')
    if (executors.includes(actor.sub)) {
      return `${actor.sub} is bound to run as ${acting.proposal.executingIdentity} and may execute this action, so it cannot approve it`
    }
    return null
  },
)

export const approvalRoleFromToken = specification<{ actor: Actor; role: string }>(
  'approvalRoleFromToken',
  "an approval's role is one the approver's token grants, never one the body claims",
  ({ actor, role }) =>
    actor.approvalRoles.includes(role)
      ? null
      : `${actor.sub}'s token grants approval in ${actor.approvalRoles.map((r) => `'${r}'`).join(', ') || 'no role'}, not '${role}'`,
)

export const proposerOrAdminWithdraws = specification<Acting>(
  'proposerOrAdminWithdraws',
  'only the proposing agent or a policy admin withdraws a proposal',
  ({ actor, proposal }) =>
    (actor.sub === proposal.agentId && holds(actor, 'agent')) || holds(actor, 'policy-admin')
      ? null
      : 'only the proposing agent or a policy admin may withdraw this proposal',
)

export const replacedByTheSameAgent = specification<{
  proposal: DataOf<'ProposalSubmitted'>
  supersededBy: string
  replacement: { readonly agentId: string; readonly status: string } | null
}>(
  'replacedByTheSameAgent',
  'a proposal is superseded only by another proposal of the same agent that was neither withdrawn nor expired',
  ({ proposal, supersededBy, replacement }) =>
    supersededBy === proposal.proposalId
      ? 'a proposal cannot supersede itself'
      : // an agent reads only its own proposals: another agent's is told apart from none at all by nothing
        replacement === null || replacement.agentId !== proposal.agentId
        ? `proposal ${supersededBy} is not a proposal of ${proposal.agentId}`
        : replacement.status === 'withdrawn' || replacement.status === 'expired'
          ? `proposal ${supersededBy} was ${replacement.status} itself: it replaces nothing`
          : null,
)

export const starterReports = specification<{ actor: Actor; executor: string; what: string }>(
  'starterReports',
  'only the principal that started an execution reports its outcome and runs its rollback',
  ({ actor, executor, what }) =>
    actor.sub === executor ? null : `only ${executor}, which started the execution, may ${what}`,
)

// ---------- the execution gate ----------

/** What a start is judged on: the proposal as it stands, the citation, and the executor's bindings. */
export interface Start {
  readonly actor: Actor
  readonly proposal: Submitted
  /** where the proposal stands: open, withdrawn, expired, executing, ... */
  readonly status: string
  readonly approvers: readonly string[]
  readonly verdict: {
    readonly verdictId: string
    readonly decision: 'allow' | 'block'
    readonly expiresAt: string
    readonly revoked: boolean
    readonly expired: boolean
  } | null
  readonly cited: { readonly verdictId: string | null; readonly actionDigest: string }
  /** the executors bound to run as the proposal's executing identity */
  readonly executors: readonly string[]
  /** the engaged kill switches over the action, as their own streams say at the gate */
  readonly engagedSwitches: readonly KillSwitchRef[]
  /** when the gate judges the start */
  readonly now: string
}

export const startedByExecutor = specification<Start>(
  'startedByExecutor',
  'an execution is started only by a principal holding the executor role',
  ({ actor }) => (holds(actor, 'executor') ? null : `${actor.sub} holds no executor role`),
)

export const executorRunsAsIdentity = specification<Start>(
  'executorRunsAsIdentity',
  'an executor runs only as the identities a policy admin bound it to',
  ({ actor, proposal, executors }) =>
    executors.includes(actor.sub)
      ? null
      : `executor ${actor.sub} is not bound to run as ${proposal.executingIdentity}`,
)

export const approverNeverExecutes = specification<Start>(
  'approverNeverExecutes',
  'one principal never both approves and executes the same proposal',
  ({ actor, approvers }) =>
    approvers.includes(actor.sub) ? `${actor.sub} approved this proposal and cannot also execute it` : null,
)

export const proposalIsOpen = specification<Start>(
  'proposalIsOpen',
  'only an open proposal is executed, once',
  ({ status }) => (status === 'open' ? null : `the proposal is not open: it is ${status}`),
)

export const citesLiveAllow = specification<Start>(
  'citesLiveAllow',
  "a start cites the proposal's current allow verdict, unexpired and unrevoked",
  ({ verdict, cited, now }) => {
    if (cited.verdictId === null) return 'the start cites no verdict'
    if (verdict === null) return 'the proposal has no verdict yet'
    if (verdict.verdictId !== cited.verdictId) {
      return `verdict ${cited.verdictId} is not the current verdict ${verdict.verdictId}`
    }
    if (verdict.decision !== 'allow') return `verdict ${verdict.verdictId} is a block`
    if (verdict.revoked) return `verdict ${verdict.verdictId} was revoked`
    if (verdict.expired || now >= verdict.expiresAt) {
      return `verdict ${verdict.verdictId} expired at ${verdict.expiresAt}`
    }
    return null
  },
)

export const noKillSwitchEngaged = specification<Start>(
  'noKillSwitchEngaged',
  'nothing starts while a kill switch over it is engaged, even before its revocation reaches the verdict',
  ({ engagedSwitches }) =>
    engagedSwitches.length === 0
      ? null
      : `engaged kill switches stop this action: ${engagedSwitches
          .map((s) => (s.target === null ? 'the global switch' : `the ${s.scope} switch for ${s.target}`))
          .join(', ')}`,
)

export const citesThisAction = specification<Start>(
  'citesThisAction',
  'a start names the exact action the verdict allows, by its digest',
  ({ proposal, cited }) =>
    cited.actionDigest === proposal.actionDigest
      ? null
      : `the start names action ${cited.actionDigest}, not this proposal's action ${proposal.actionDigest}`,
)

export const gateOpen = specification<{ gateClosed: string | null }>(
  'gateOpen',
  'nothing starts while the service cannot vouch for the verdict: every event in the ledger so far judged by the decision service, every ledger consumer running',
  ({ gateClosed }) =>
    gateClosed === null
      ? null
      : `the execution gate is closed, so the verdict in the ledger may not be the one to trust: ${gateClosed}`,
)

/** Who may start at all: a principal breaking one of these could not run the action; refused (403), not recorded. */
export const WHO_MAY_START = [startedByExecutor, executorRunsAsIdentity, approverNeverExecutes] as const

/** What a start by an entitled executor needs: breaking one is refused (409), recorded and counted. */
export const WHAT_A_START_NEEDS = [
  proposalIsOpen,
  citesLiveAllow,
  noKillSwitchEngaged,
  citesThisAction,
] as const
