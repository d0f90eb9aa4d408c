import type { Actor } from '../domain/actor.js'
import type { AgentCommand, AgentState } from '../domain/deciders/agent.js'
import { agent } from '../domain/deciders/index.js'
import { type AuthorityLevel, streams, type TrackRecord } from '../domain/events.js'
import type { AppendResult, EventStore } from '../store/port.js'
import { policyInForce, promotionRequirement } from './context.js'
import { type CommandMetadata, handle } from './handle.js'

type Options = Omit<CommandMetadata, 'actor'>

/** A record of nothing, for a command that fails before any record is judged. */
const NO_RECORD: TrackRecord = {
  windowStart: '1970-01-01T00:00:00.000Z',
  windowEnd: '1970-01-01T00:00:00.000Z',
  proposals: 0,
  simulationsPassed: 0,
  simulationSurvivalRate: 0,
  violations: 0,
  failedExecutions: 0,
}

/** The window a track record covers when no policy names one (no policy: the request is refused anyway). */
const DEFAULT_WINDOW_DAYS = 30

/**
 * A promotion request: the policy in force says what track record the rung needs and over how many days,
 * the ledger computes the record over that window, and the agent decider judges it.
 */
export const requestPromotion = (
  store: EventStore,
  actor: Actor,
  agentId: string,
  request: { readonly requestId: string; readonly environment: string; readonly to: AuthorityLevel },
  trackRecordOver: (days: number) => Promise<TrackRecord>,
  options: Options = {},
): Promise<AppendResult> => {
  const command = async (): Promise<AgentCommand> => {
    const requirement = promotionRequirement(await policyInForce(store), request.environment, request.to)
    const trackRecord = await trackRecordOver(requirement?.windowDays ?? DEFAULT_WINDOW_DAYS)
    return { type: 'RequestPromotion', actor, ...request, trackRecord, context: { requirement } }
  }
  return handle(store, agent, streams.agent(agentId), command, { ...options, actor: actor.sub })
}

/**
 * An admin's approval of a pending promotion: the record is computed again and judged against the policy in
 * force now, so a request made under a laxer policy, or on a record that has since worsened, is refused.
 */
export const approvePromotion = (
  store: EventStore,
  actor: Actor,
  agentId: string,
  requestId: string,
  trackRecordOver: (environment: string, days: number) => Promise<TrackRecord>,
  options: Options = {},
): Promise<AppendResult> => {
  const command = async (state: AgentState): Promise<AgentCommand> => {
    const pending = state.status === 'registered' ? state.pending[requestId] : undefined
    // without a pending request there is no record to judge: the decider says what is missing
    if (pending === undefined) {
      return {
        type: 'ApprovePromotion',
        actor,
        requestId,
        context: { requirement: null, trackRecord: NO_RECORD },
      }
    }
    const requirement = promotionRequirement(await policyInForce(store), pending.environment, pending.to)
    const trackRecord = await trackRecordOver(
      pending.environment,
      requirement?.windowDays ?? DEFAULT_WINDOW_DAYS,
    )
    return { type: 'ApprovePromotion', actor, requestId, context: { requirement, trackRecord } }
  }
  return handle(store, agent, streams.agent(agentId), command, { ...options, actor: actor.sub })
}
