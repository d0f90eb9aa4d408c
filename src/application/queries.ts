import { type ActionDoc, type AuditedAction, type AuditReader, actionOf } from '../../projections/audit.js'
import type { WindowKind } from '../../projections/metrics.js'
import { type SurvivalDoc, survivalKeys } from '../../projections/survival.js'
import {
  presentCounts,
  type SurvivalFigures,
  type Trend,
  WindowSeries,
} from '../../projections/survival-summary.js'
import { agent, proposal } from '../domain/deciders/index.js'
import type { ProposalState } from '../domain/deciders/proposal.js'
import { type AuthorityLevel, type DataOf, streams } from '../domain/events.js'
import { type ToolAction, workflowName } from '../domain/workflow.js'
import type { EventStore, StoredEvent } from '../store/port.js'
import { foldState, loadState } from './handle.js'
import { WINDOW_MS } from './windows.js'

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
  const events = await store.readStream(streams.proposal(proposalId))
  const state = foldState(proposal, events)
  if (state.status === 'none') return null
  return { ...state, verdictDetail: verdictOf(events) }
}

/**
 * The current verdict, read from `fromVersion` of the proposal's stream on (the latest verdict's, when known);
 * with `through`, as it stood at that ledger position.
 */
export const currentVerdict = async (
  store: EventStore,
  proposalId: string,
  fromVersion = 1,
  through = Number.POSITIVE_INFINITY,
): Promise<VerdictView | null> => {
  const events = await store.readStream(streams.proposal(proposalId), fromVersion)
  return verdictOf(events.filter((e) => e.position <= through))
}

/**
 * The current verdict told by a proposal's events: the latest issued, marked if revoked or expired since. `from`
 * is the verdict told by the events before these, to follow a proposal event by event.
 */
export const verdictOf = (
  events: readonly StoredEvent[],
  from: VerdictView | null = null,
): VerdictView | null => {
  let verdict: VerdictView | null = from
  for (const e of events) {
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

/** The data of one event of a stream, by its id: what a retried command answered with the first time. */
export const eventData = async (store: EventStore, stream: string, eventId: string): Promise<unknown> =>
  (await store.readStream(stream)).find((e) => e.id === eventId)?.data

/** Ledger time now: when the latest event was recorded; null for an empty ledger. */
export const ledgerTime = async (store: EventStore): Promise<string | null> => {
  const { position } = await store.head()
  if (position === 0) return null
  const [latest] = await store.readAll(position - 1, 1)
  return latest?.recordedAt ?? null
}

/** An audited action with its plan, read from its submission: the ledger holds the plan, the audit view its hash. */
export const withPlan = async (store: EventStore, action: AuditedAction, submittedPosition: number) => {
  const [submitted] = await store.readAll(submittedPosition - 1, 1)
  if (submitted?.type !== 'ProposalSubmitted')
    throw new Error(`no submission of ${action.proposalId} at ledger position ${submittedPosition}`)
  const { plan } = submitted.data as DataOf<'ProposalSubmitted'>
  return { ...action, what: { ...action.what, plan } }
}

/** An action in one line, for the audit indexes of an agent or a resource. */
export const actionSummary = (doc: ActionDoc) => {
  const { outcome, violation, latestVerdict } = doc
  const { tool, action, resource, environment } = doc.what
  const recovery =
    doc.howFast.timeToRecoverySeconds === null ? '' : `, recovered in ${doc.howFast.timeToRecoverySeconds} s`
  return {
    proposalId: doc.proposalId,
    submittedAt: doc.submittedAt,
    agentId: doc.who.agentId,
    tool,
    action,
    resource,
    environment,
    outcome,
    latestDecision: latestVerdict?.decision ?? null,
    violation,
    timeToRecoverySeconds: doc.howFast.timeToRecoverySeconds,
    summary: `${doc.who.agentId} ${tool}.${action} on ${resource} in ${environment}: ${outcome}${violation ? ' (violation)' : ''}${recovery}`,
  }
}

/** The actions of these proposals, each in one line; a proposal the audit view does not hold yet is left out. */
export const actionSummaries = (audit: AuditReader, proposalIds: readonly string[]) =>
  proposalIds.flatMap((id) => {
    const doc = actionOf(audit, id)
    return doc ? [actionSummary(doc)] : []
  })

/** The id a command recorded: on a retry (same idempotency key) the first one, not the one generated now. */
export const recordedId = async (
  store: EventStore,
  result: {
    readonly duplicate: boolean
    readonly events: readonly { readonly id: string; readonly stream: string }[]
  },
  field: string,
  chosen: string,
): Promise<string> => {
  const first = result.events[0]
  if (!result.duplicate || !first) return chosen
  // the first answer's stream, which may be named after the id generated the first time
  const data = await eventData(store, first.stream, first.id)
  // a dotted field reads into the data: `change.grantId`
  const id = field
    .split('.')
    .reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], data)
  return typeof id === 'string' ? id : chosen
}

// ---------- branch survival over time ----------

/** What a survival read narrows to: a workflow, an agent, an environment; each undefined for all. */
export interface SurvivalFilter {
  readonly window: WindowKind
  readonly workflow: ToolAction | undefined
  readonly agentId: string | undefined
  readonly environment: string | undefined
}

export interface SurvivalReader {
  list(prefix: string): Array<[string, SurvivalDoc]>
  /** the ledger position the documents reflect */
  checkpoint(): number
}

type Breakdown<K extends string> = Record<K, string> & SurvivalFigures & { readonly trend: Trend }

/**
 * Branch survival over the windows of a range (each window start, in order): per window, the range summed with
 * its trend, and per workflow and per agent, each with its own trend.
 */
export const branchSurvival = (reader: SurvivalReader, filter: SurvivalFilter, starts: readonly string[]) => {
  const { window, workflow, agentId, environment } = filter
  const step = WINDOW_MS[window]
  const all = new WindowSeries()
  const byWorkflow = new Map<string, WindowSeries>()
  const byAgent = new Map<string, WindowSeries>()
  const seriesOf = (map: Map<string, WindowSeries>, key: string): WindowSeries => {
    const found = map.get(key) ?? new WindowSeries()
    map.set(key, found)
    return found
  }
  const asOf = reader.checkpoint()
  starts.forEach((start, index) => {
    const prefix = survivalKeys.window(window, start, workflow, workflow && environment)
    for (const [, doc] of reader.list(prefix)) {
      if (doc.kind !== 'window') continue
      if (agentId !== undefined && doc.agentId !== agentId) continue
      if (environment !== undefined && doc.environment !== environment) continue
      all.add(index, doc)
      seriesOf(byWorkflow, workflowName(doc)).add(index, doc)
      seriesOf(byAgent, doc.agentId).add(index, doc)
    }
  })
  const breakdown = <K extends string>(map: Map<string, WindowSeries>, key: K) =>
    [...map]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(
        ([name, series]) =>
          ({ [key]: name, ...presentCounts(series.total()), trend: series.trend(starts) }) as Breakdown<K>,
      )
  const endOf = (start: string) => new Date(Date.parse(start) + step).toISOString()
  const first = starts[0] ?? ''
  return {
    window,
    workflow: workflow === undefined ? null : workflowName(workflow),
    agentId: agentId ?? null,
    environment: environment ?? null,
    start: first,
    end: endOf(starts.at(-1) ?? first),
    series: starts.map((start, index) => ({ start, end: endOf(start), ...presentCounts(all.at(index)) })),
    totals: { ...presentCounts(all.total()), trend: all.trend(starts) },
    byWorkflow: breakdown(byWorkflow, 'workflow'),
    byAgent: breakdown(byAgent, 'agentId'),
    asOf,
  }
}
export type BranchSurvival = ReturnType<typeof branchSurvival>
