import type { BindingState } from '../domain/deciders/binding.js'
import type { WideningContext } from '../domain/deciders/governance.js'
import { binding, inventory, killSwitch, policy } from '../domain/deciders/index.js'
import type {
  AuthorityLevel,
  DataOf,
  ImpactClass,
  KillSwitchRef,
  PromotionRequirement,
} from '../domain/events.js'
import { streams } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { loadState } from './handle.js'

/** What the rules read beside the stream a command is decided on, loaded from the ledger at the edge. */

/** The principals bound to an executing identity: agents acting through it, executors running as it. */
export const bindingsOf = async (store: EventStore, identity: string): Promise<BindingState> =>
  (await loadState(store, binding, streams.identity(identity))).state

/** Whether the ledger registered this subject as an agent: its word is never evidence, whatever its token says. */
export const isAgent = async (store: EventStore, subject: string): Promise<boolean> =>
  (await store.readStream(streams.agent(subject))).length > 0

/** The policy in force, or null before the first one is published. */
export const policyInForce = async (store: EventStore): Promise<DataOf<'PolicyPublished'> | null> => {
  const { state } = await loadState(store, policy, streams.policy())
  return state.status === 'published' ? state.current : null
}

/** The least track record a promotion to `to` in `environment` needs under a policy. */
export const promotionRequirement = (
  current: DataOf<'PolicyPublished'> | null,
  environment: string,
  to: AuthorityLevel,
): PromotionRequirement | null => {
  if (current === null || to === 'observe') return null
  return (current.promotionByEnvironment[environment] ?? current.promotion)[to]
}

/** What the widening rules of governance read: whether the ledger is empty, and the inventory. */
export const wideningContext = async (
  store: EventStore,
  toolAction: { readonly tool: string; readonly action: string } | null,
): Promise<WideningContext> => {
  const ledgerEmpty = (await store.head()).position === 0
  let entry: { impact: ImpactClass; reversible: boolean } | null = null
  if (toolAction !== null && toolAction.tool !== '*' && toolAction.action !== '*') {
    const { state } = await loadState(store, inventory, streams.tool(toolAction.tool, toolAction.action))
    entry = state.status === 'registered' ? state.current : null
  }
  const registered = (tool: string, action: string) =>
    toolAction !== null && tool === toolAction.tool && action === toolAction.action ? entry : null
  return { ledgerEmpty, registered }
}

/** The engaged kill switches that stop an action: global, its environment, its tool, its agent. */
export const switchesOver = async (
  store: EventStore,
  action: { readonly environment: string; readonly tool: string; readonly agentId: string },
): Promise<KillSwitchRef[]> => {
  const scopes: KillSwitchRef[] = [
    { scope: 'global', target: null },
    { scope: 'environment', target: action.environment },
    { scope: 'tool', target: action.tool },
    { scope: 'agent', target: action.agentId },
  ]
  const states = await Promise.all(scopes.map((ref) => loadState(store, killSwitch, streams.killSwitch(ref))))
  return scopes.filter((_, i) => states[i]?.state.status === 'engaged')
}

/** Time at the edge, as the ledger records it: the rules are handed it, never read a clock. */
export const ledgerNow = (): string => new Date().toISOString()
