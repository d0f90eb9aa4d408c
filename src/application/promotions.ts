import type { Actor } from '../domain/actor.js'
import type { AgentCommand } from '../domain/deciders/agent.js'
import { agent } from '../domain/deciders/index.js'
import { type AuthorityLevel, streams, type TrackRecord } from '../domain/events.js'
import type { AppendResult, EventStore } from '../store/port.js'
import { policyInForce, promotionRequirement } from './context.js'
import { type CommandMetadata, handle } from './handle.js'

type Options = Omit<CommandMetadata, 'actor'>

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
