import { levelIn, nextRung } from '../authority.js'
import { DomainError } from '../errors.js'
import type { AuthorityLevel, EventOf, TrackRecord } from '../events.js'

export type AgentEvent =
  | EventOf<'AgentRegistered'>
  | EventOf<'PromotionRequested'>
  | EventOf<'PromotionRefused'>
  | EventOf<'AgentPromoted'>
  | EventOf<'AgentDemoted'>

export type AgentCommand =
  | { type: 'RegisterAgent'; agentId: string; owner: string; description: string }
  | {
      type: 'RequestPromotion'
      requestId: string
      environment: string
      to: AuthorityLevel
      trackRecord: TrackRecord
    }
  | { type: 'ApprovePromotion'; requestId: string; approver: string }
  /** who refused is the event's actor: PromotionRefused has no field for it */
  | { type: 'RefusePromotion'; requestId: string; by: string; reason: string }

export interface PendingPromotion {
  readonly environment: string
  readonly from: AuthorityLevel
  readonly to: AuthorityLevel
}

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
  if (command.type === 'RegisterAgent') return register(command, state)
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
  const { requestId, environment, to, trackRecord } = command
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
  return [
    {
      type: 'PromotionRequested',
      data: { agentId: state.agentId, requestId, environment, from, to, trackRecord },
    },
  ]
}

const pendingRequest = (state: Registered, requestId: string): PendingPromotion => {
  const request = state.pending[requestId]
  if (request === undefined) throw new DomainError('not-found', `no pending promotion request ${requestId}`)
  return request
}

const approvePromotion = (command: Command<'ApprovePromotion'>, state: Registered): AgentEvent[] => {
  const { requestId, approver } = command
  const { environment, from, to } = pendingRequest(state, requestId)
  if (approver === state.agentId) throw new DomainError('forbidden', 'nobody approves their own promotion')
  const current = levelIn(state.levels, environment)
  if (current !== from) {
    const reason = `the level in ${environment} changed from ${from} to ${current} since the request`
    return [
      {
        type: 'PromotionRefused',
        data: { agentId: state.agentId, requestId, environment, from, to, reason },
      },
    ]
  }
  return [
    {
      type: 'AgentPromoted',
      data: { agentId: state.agentId, requestId, environment, from, to, approvedBy: approver },
    },
  ]
}

const refusePromotion = (command: Command<'RefusePromotion'>, state: Registered): AgentEvent[] => {
  const { requestId, reason } = command
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
      const { requestId, environment, from, to } = event.data
      return { ...state, pending: { ...state.pending, [requestId]: { environment, from, to } } }
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
