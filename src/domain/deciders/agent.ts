import { type Actor, holds } from '../actor.js'
import { levelIn, nextRung } from '../authority.js'
import { DomainError } from '../errors.js'
import type { AuthorityLevel, EventOf, PromotionRequirement, TrackRecord } from '../events.js'
import { demand, specification } from '../specification.js'
import { adminGoverns } from './governance.js'

export type AgentEvent =
  | EventOf<'AgentRegistered'>
  | EventOf<'PromotionRequested'>
  | EventOf<'PromotionApproved'>
  | EventOf<'PromotionRefused'>
  | EventOf<'AgentPromoted'>
  | EventOf<'AgentDemoted'>

export type AgentCommand = { readonly actor: Actor } & (
  | { type: 'RegisterAgent'; agentId: string; owner: string; description: string }
  | {
      type: 'RequestPromotion'
      requestId: string
      environment: string
      to: AuthorityLevel
      /** what the ledger computes over the policy's window, never what the caller says */
      trackRecord: TrackRecord
      /** the least track record the policy in force asks for that rung; null: no policy, fail closed */
      context: { requirement: PromotionRequirement | null }
    }
  | {
      type: 'ApprovePromotion'
      requestId: string
      /** the record judged again, as the ledger computes it now, against the policy in force now */
      context: { requirement: PromotionRequirement | null; trackRecord: TrackRecord }
    }
  /** who refused is the event's actor: PromotionRefused has no field for it */
  | { type: 'RefusePromotion'; requestId: string; reason: string }
)

export interface PendingPromotion {
  readonly environment: string
  readonly from: AuthorityLevel
  readonly to: AuthorityLevel
  readonly requestedBy: string
  /** the distinct policy admins behind it so far: the requester when it is one, then each approver */
  readonly endorsedBy: readonly string[]
}

/** How many distinct policy admins a promotion needs: it widens authority, so never one alone. */
export const PROMOTION_ENDORSEMENTS = 2

// ---------- who may do what, each a named specification ----------

export const agentOrAdminRequestsPromotion = specification<{ actor: Actor; agentId: string }>(
  'agentOrAdminRequestsPromotion',
  'a promotion is requested by the agent itself or by a policy admin',
  ({ actor, agentId }) =>
    (actor.sub === agentId && holds(actor, 'agent')) || holds(actor, 'policy-admin')
      ? null
      : `only agent ${agentId} itself or a policy admin may request its promotion`,
)

export const secondDistinctAdmin = specification<{
  actor: Actor
  agentId: string
  endorsedBy: readonly string[]
}>(
  'secondDistinctAdmin',
  'a promotion takes effect once two distinct policy admins stand behind it, neither of them the agent',
  ({ actor, agentId, endorsedBy }) => {
    if (!holds(actor, 'policy-admin')) return `${actor.sub} holds no policy-admin role`
    if (actor.sub === agentId) return 'nobody approves their own promotion'
    if (endorsedBy.includes(actor.sub)) {
      return `${actor.sub} already stands behind this promotion: a second, distinct policy admin must approve it`
    }
    return null
  },
)

/** Every shortfall of a track record against the policy's minimum, in numbers; empty when it is met. */
export const trackRecordShortfall = (record: TrackRecord, need: PromotionRequirement): string[] =>
  [
    record.proposals < need.minProposals
      ? `${record.proposals} proposals of ${need.minProposals} required`
      : null,
    record.simulationsPassed < need.minSimulationsPassed
      ? `${record.simulationsPassed} simulations passed of ${need.minSimulationsPassed} required`
      : null,
    record.simulationSurvivalRate < need.minSurvivalRate
      ? `a survival rate of ${record.simulationSurvivalRate} below ${need.minSurvivalRate}`
      : null,
    record.violations > need.maxViolations
      ? `${record.violations} violations (at most ${need.maxViolations})`
      : null,
    record.failedExecutions > need.maxFailedExecutions
      ? `${record.failedExecutions} failed executions (at most ${need.maxFailedExecutions})`
      : null,
  ].filter((s) => s !== null)

export type AgentState =
  | { readonly status: 'none' }
  | {
      readonly status: 'registered'
      readonly agentId: string
      readonly owner: string
      /** per environment; an environment missing here is observe */
      readonly levels: Readonly<Record<string, AuthorityLevel>>
      /** by request id */
      readonly pending: Readonly<Record<string, PendingPromotion>>
    }

type Registered = Extract<AgentState, { status: 'registered' }>
type Command<T extends AgentCommand['type']> = Extract<AgentCommand, { type: T }>

export const initialState = (): AgentState => ({ status: 'none' })

export const decide = (command: AgentCommand, state: AgentState): AgentEvent[] => {
  if (command.type === 'RegisterAgent') {
    demand(adminGoverns, command.actor)
    return register(command, state)
  }
  if (state.status === 'none') throw new DomainError('not-found', 'the agent is not registered')
  switch (command.type) {
    case 'RequestPromotion':
      return requestPromotion(command, state)
    case 'ApprovePromotion':
      return approvePromotion(command, state)
    case 'RefusePromotion':
      return refusePromotion(command, state)
  }
}

const register = (command: Command<'RegisterAgent'>, state: AgentState): AgentEvent[] => {
  if (state.status !== 'none')
    throw new DomainError('conflict', `agent ${state.agentId} is already registered`)
  const { agentId, owner, description } = command
  return [{ type: 'AgentRegistered', data: { agentId, owner, description } }]
}

const requestPromotion = (command: Command<'RequestPromotion'>, state: Registered): AgentEvent[] => {
  const { actor, requestId, environment, to, trackRecord, context } = command
  demand(agentOrAdminRequestsPromotion, { actor, agentId: state.agentId })
  const earlier = state.pending[requestId]
  if (earlier !== undefined) {
    // a retried request is harmless; the same id for another request is not
    if (earlier.environment === environment && earlier.to === to) return []
    throw new DomainError('conflict', `request ${requestId} is already pending for another promotion`)
  }
  const from = levelIn(state.levels, environment)
  const next = nextRung(from)
  if (to !== next) {
    // refused and recorded, so the attempt shows in the agent's history
    const reason =
      next === null
        ? `${from} is the top rung in ${environment}; there is nothing to promote to`
        : `promotion is one rung at a time: from ${from} in ${environment} the next rung is ${next}, not ${to}`
    return [
      {
        type: 'PromotionRefused',
        data: { agentId: state.agentId, requestId, environment, from, to, reason },
      },
    ]
  }
  const other = Object.keys(state.pending).find((id) => state.pending[id]?.environment === environment)
  if (other !== undefined) {
    throw new DomainError('conflict', `request ${other} is already pending for ${environment}`)
  }
  // earned, not granted: a record short of the policy's minimum is refused with the numbers, whoever asks
  const reason = unearned(environment, to, trackRecord, context.requirement)
  if (reason !== null) {
    return [
      {
        type: 'PromotionRefused',
        data: { agentId: state.agentId, requestId, environment, from, to, reason },
      },
    ]
  }
  return [
    {
      type: 'PromotionRequested',
      data: { agentId: state.agentId, requestId, environment, from, to, trackRecord, requestedBy: actor.sub },
    },
  ]
}

/** Why a track record does not earn the rung under the requirement, with the numbers; null when it does. */
const unearned = (
  environment: string,
  to: AuthorityLevel,
  record: TrackRecord,
  requirement: PromotionRequirement | null,
): string | null => {
  const shortfall =
    requirement === null
      ? ['no policy is in force, so no track record can be judged: fail closed']
      : trackRecordShortfall(record, requirement)
  if (shortfall.length === 0) return null
  const window = requirement === null ? '' : ` over the last ${requirement.windowDays} days`
  return `the track record in ${environment}${window} does not earn ${to}: ${shortfall.join('; ')}`
}

const pendingRequest = (state: Registered, requestId: string): PendingPromotion => {
  const request = state.pending[requestId]
  if (request === undefined) throw new DomainError('not-found', `no pending promotion request ${requestId}`)
  return request
}

const approvePromotion = (command: Command<'ApprovePromotion'>, state: Registered): AgentEvent[] => {
  const { actor, requestId, context } = command
  const { environment, from, to, endorsedBy } = pendingRequest(state, requestId)
  demand(secondDistinctAdmin, { actor, agentId: state.agentId, endorsedBy })
  const current = levelIn(state.levels, environment)
  // judged again as approved: a record that no longer earns the rung, or a rung that moved, is refused
  const reason =
    current !== from
      ? `the level in ${environment} changed from ${from} to ${current} since the request`
      : unearned(environment, to, context.trackRecord, context.requirement)
  if (reason !== null) {
    return [
      {
        type: 'PromotionRefused',
        data: { agentId: state.agentId, requestId, environment, from, to, reason },
      },
    ]
  }
  const agentId = state.agentId
  const approved: AgentEvent = {
    type: 'PromotionApproved',
    data: { agentId, requestId, environment, approvedBy: actor.sub },
  }
  const endorsed = [...endorsedBy, actor.sub]
  if (endorsed.length < PROMOTION_ENDORSEMENTS) return [approved]
  return [
    approved,
    {
      type: 'AgentPromoted',
      data: { agentId, requestId, environment, from, to, approvedBy: actor.sub, endorsedBy: endorsed },
    },
  ]
}

const refusePromotion = (command: Command<'RefusePromotion'>, state: Registered): AgentEvent[] => {
  const { actor, requestId, reason } = command
  demand(adminGoverns, actor)
  const { environment, from, to } = pendingRequest(state, requestId)
  return [
    { type: 'PromotionRefused', data: { agentId: state.agentId, requestId, environment, from, to, reason } },
  ]
}

export const evolve = (state: AgentState, event: AgentEvent): AgentState => {
  if (event.type === 'AgentRegistered') {
    const { agentId, owner } = event.data
    return { status: 'registered', agentId, owner, levels: {}, pending: {} }
  }
  if (state.status === 'none') return state
  switch (event.type) {
    case 'PromotionRequested': {
      const { requestId, environment, from, to, requestedBy } = event.data
      // a policy admin who asks stands behind the request; an agent asking for itself does not count
      const endorsedBy = requestedBy === state.agentId ? [] : [requestedBy]
      const request = { environment, from, to, requestedBy, endorsedBy }
      return { ...state, pending: { ...state.pending, [requestId]: request } }
    }
    case 'PromotionApproved': {
      const request = state.pending[event.data.requestId]
      if (request === undefined) return state
      const endorsed = { ...request, endorsedBy: [...request.endorsedBy, event.data.approvedBy] }
      return { ...state, pending: { ...state.pending, [event.data.requestId]: endorsed } }
    }
    case 'PromotionRefused':
      return { ...state, pending: without(state.pending, (id) => id === event.data.requestId) }
    case 'AgentPromoted': {
      const { requestId, environment, to } = event.data
      const pending = without(state.pending, (id) => id === requestId)
      return { ...state, levels: { ...state.levels, [environment]: to }, pending }
    }
    case 'AgentDemoted': {
      // a demotion cancels every pending request in that environment
      const { environment, to } = event.data
      const pending = without(state.pending, (_, request) => request.environment === environment)
      return { ...state, levels: { ...state.levels, [environment]: to }, pending }
    }
  }
}

const without = (
  pending: Registered['pending'],
  drop: (requestId: string, request: PendingPromotion) => boolean,
): Registered['pending'] =>
  Object.fromEntries(Object.entries(pending).filter(([id, request]) => !drop(id, request)))
