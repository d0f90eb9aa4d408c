import { agent, proposal } from '../domain/deciders/index.js'
import type { ProposalState } from '../domain/deciders/proposal.js'
import { type AuthorityLevel, type DataOf, streams } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { loadState } from './handle.js'

export type VerdictView = DataOf<'VerdictIssued'> & {
  readonly position: number
  readonly revoked: boolean
  readonly expired: boolean
}

export type ProposalView = Exclude<ProposalState, { status: 'none' }> & {
  readonly verdictDetail: VerdictView | null
}

/** A proposal as its stream tells it, with the full current verdict (every check and its reason). */
export const proposalView = async (store: EventStore, proposalId: string): Promise<ProposalView | null> => {
  const stream = streams.proposal(proposalId)
  const { state } = await loadState(store, proposal, stream)
  if (state.status === 'none') return null
  return { ...state, verdictDetail: await currentVerdict(store, proposalId) }
}

export const currentVerdict = async (store: EventStore, proposalId: string): Promise<VerdictView | null> => {
  let verdict: VerdictView | null = null
  for (const e of await store.readStream(streams.proposal(proposalId))) {
    if (e.type === 'VerdictIssued') {
      verdict = {
        ...(e.data as DataOf<'VerdictIssued'>),
        position: e.position,
        revoked: false,
        expired: false,
      }
    } else if (e.type === 'VerdictRevoked' || e.type === 'VerdictExpired') {
      const current = verdict as VerdictView | null
      if (!current || current.verdictId !== (e.data as { verdictId: string }).verdictId) continue
      verdict = e.type === 'VerdictRevoked' ? { ...current, revoked: true } : { ...current, expired: true }
    }
  }
  return verdict
}

/** The agent's level in an environment now, from its own stream; null when it is not registered. */
export const agentLevel = async (
  store: EventStore,
  agentId: string,
  environment: string,
): Promise<AuthorityLevel | null> => {
  const { state } = await loadState(store, agent, streams.agent(agentId))
  return state.status === 'registered' ? (state.levels[environment] ?? 'observe') : null
}
