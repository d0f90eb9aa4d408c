import type { AuthorityLevel, DomainEvent, EventOf, LedgerEvent, TrackRecord } from '../src/domain/events.js'
import { runSurvival, survivalRate } from '../src/domain/survival.js'
import type { DocChange, DocReader, Projection } from './projection.js'

/** The rung an agent holds in one environment, and the event that put it there. */
export type LevelHeld =
  | {
      readonly level: AuthorityLevel
      readonly since: string
      readonly cause: 'promotion'
      readonly requestId: string
      readonly approvedBy: string
      readonly eventId: string
    }
  | {
      readonly level: AuthorityLevel
      readonly since: string
      readonly cause: 'demotion'
      readonly reason: string
      readonly demotionCause: 'violation' | 'unrecovered-failure'
      readonly proposalId: string
      readonly eventId: string
    }

export interface PendingPromotion {
  readonly requestId: string
  readonly environment: string
  readonly from: AuthorityLevel
  readonly to: AuthorityLevel
  readonly requestedAt: string
  readonly eventId: string
}

/** key `agent:<agentId>`; an environment missing from levels is at 'observe' */
export interface AgentDoc {
  readonly kind: 'agent'
  readonly agentId: string
  /** null when the agent was promoted or demoted before it was registered */
  readonly owner: string | null
  readonly levels: Readonly<Record<string, LevelHeld>>
  readonly pendingPromotions: readonly PendingPromotion[]
  readonly refusedPromotions: number
}

/** key `proposal:<proposalId>`: whose track record a later event about the proposal counts in */
export interface ProposalOwnerDoc {
  readonly kind: 'proposal'
  readonly agentId: string
  readonly environment: string
}

export const TRACK_COUNTS = [
  'proposals',
  'simulations',
  'simulationsPassed',
  'branches',
  'branchesSurvived',
  'violations',
  'failedExecutions',
] as const
export type TrackCounts = Readonly<Record<(typeof TRACK_COUNTS)[number], number>>

/** key `track:<agentId>:<environment>:<YYYY-MM-DD>`: one UTC day of an agent's track record; branches are adversarial ones */
export interface TrackDoc extends TrackCounts {
  readonly kind: 'track'
  readonly agentId: string
  readonly environment: string
  readonly day: string
}

export type AuthorityDoc = AgentDoc | ProposalOwnerDoc | TrackDoc

export const authorityKeys = {
  agent: (agentId: string) => `agent:${agentId}`,
  proposal: (proposalId: string) => `proposal:${proposalId}`,
  track: (agentId: string, environment: string, day: string) => `track:${agentId}:${environment}:${day}`,
  /** agent ids may contain ':', so keep only the listed days whose agentId and environment match (see trackDaysOf) */
  trackPrefix: (agentId: string, environment: string) => `track:${agentId}:${environment}:`,
} as const

/** The level an agent holds in an environment: 'observe' until promoted. */
export const authorityOf = (agent: AgentDoc | undefined, environment: string): AuthorityLevel =>
  agent?.levels[environment]?.level ?? 'observe'

/** The track days of one agent and environment among listed documents. */
export const trackDaysOf = (docs: Iterable<unknown>, agentId: string, environment: string): TrackDoc[] =>
  [...docs].filter(
    (doc): doc is TrackDoc =>
      (doc as AuthorityDoc | null)?.kind === 'track' &&
      (doc as TrackDoc).agentId === agentId &&
      (doc as TrackDoc).environment === environment,
  )

/**
 * The track record over a window, counted in whole UTC days: a day counts when it overlaps the window.
 * The survival rate is adversarial branches survived over adversarial branches run, 1 when none ran.
 */
export const trackRecord = (
  days: readonly TrackDoc[],
  windowStart: string,
  windowEnd: string,
): TrackRecord => {
  const first = windowStart.slice(0, 10)
  const last = windowEnd.slice(0, 10)
  const inWindow = days.filter((d) => d.day >= first && d.day <= last)
  const sum = (count: keyof TrackCounts) => inWindow.reduce((total, d) => total + d[count], 0)
  const branches = sum('branches')
  return {
    windowStart,
    windowEnd,
    proposals: sum('proposals'),
    simulationsPassed: sum('simulationsPassed'),
    simulationSurvivalRate: survivalRate(sum('branchesSurvived'), branches),
    violations: sum('violations'),
    failedExecutions: sum('failedExecutions'),
  }
}

// ---------- evolve ----------

type Read = DocReader<AuthorityDoc>
type Change = DocChange<AuthorityDoc>

const readAgent = (read: Read, agentId: string): AgentDoc | undefined => {
  const doc = read(authorityKeys.agent(agentId))
  return doc?.kind === 'agent' ? doc : undefined
}

const readOwner = (read: Read, proposalId: string): ProposalOwnerDoc | undefined => {
  const doc = read(authorityKeys.proposal(proposalId))
  return doc?.kind === 'proposal' ? doc : undefined
}

const agentOrNew = (read: Read, agentId: string): AgentDoc =>
  readAgent(read, agentId) ?? {
    kind: 'agent',
    agentId,
    owner: null,
    levels: {},
    pendingPromotions: [],
    refusedPromotions: 0,
  }

const putAgent = (doc: AgentDoc): Change => [authorityKeys.agent(doc.agentId), doc]

const withoutRequest = (doc: AgentDoc, requestId: string): readonly PendingPromotion[] =>
  doc.pendingPromotions.filter((p) => p.requestId !== requestId)

/** Adds to the day of the event in the track record of the agent and environment. */
const count = (
  read: Read,
  owner: Omit<ProposalOwnerDoc, 'kind'>,
  at: string,
  add: Partial<TrackCounts>,
): Change => {
  const day = at.slice(0, 10)
  const key = authorityKeys.track(owner.agentId, owner.environment, day)
  const found = read(key)
  const doc: TrackDoc =
    found?.kind === 'track'
      ? found
      : {
          kind: 'track',
          agentId: owner.agentId,
          environment: owner.environment,
          day,
          ...(Object.fromEntries(TRACK_COUNTS.map((c) => [c, 0])) as TrackCounts),
        }
  const counts = Object.fromEntries(TRACK_COUNTS.map((c) => [c, doc[c] + (add[c] ?? 0)])) as TrackCounts
  return [key, { ...doc, ...counts }]
}

const simulationCounts = (event: EventOf<'SimulationRecorded'>): Partial<TrackCounts> => {
  // the baseline shows the plan works; only adversarial branches show it survives pressure
  const run = runSurvival(event.data.branches)
  return {
    simulations: 1,
    simulationsPassed: run.passed ? 1 : 0,
    branches: run.adversarial,
    branchesSurvived: run.survived,
  }
}

const evolve = (read: Read, event: LedgerEvent<DomainEvent>): Change[] => {
  const at = event.recordedAt
  switch (event.type) {
    case 'AgentRegistered':
      return [putAgent({ ...agentOrNew(read, event.data.agentId), owner: event.data.owner })]
    case 'PromotionRequested': {
      const doc = agentOrNew(read, event.data.agentId)
      const { requestId, environment, from, to } = event.data
      const pending = { requestId, environment, from, to, requestedAt: at, eventId: event.id }
      return [putAgent({ ...doc, pendingPromotions: [...withoutRequest(doc, requestId), pending] })]
    }
    case 'PromotionRefused': {
      const doc = agentOrNew(read, event.data.agentId)
      return [
        putAgent({
          ...doc,
          pendingPromotions: withoutRequest(doc, event.data.requestId),
          refusedPromotions: doc.refusedPromotions + 1,
        }),
      ]
    }
    case 'AgentPromoted': {
      const doc = agentOrNew(read, event.data.agentId)
      const { requestId, environment, to, approvedBy } = event.data
      const held: LevelHeld = {
        level: to,
        since: at,
        cause: 'promotion',
        requestId,
        approvedBy,
        eventId: event.id,
      }
      return [
        putAgent({
          ...doc,
          levels: { ...doc.levels, [environment]: held },
          pendingPromotions: withoutRequest(doc, requestId),
        }),
      ]
    }
    case 'AgentDemoted': {
      const doc = agentOrNew(read, event.data.agentId)
      const { environment, to, reason, cause, proposalId } = event.data
      const held: LevelHeld = {
        level: to,
        since: at,
        cause: 'demotion',
        reason,
        demotionCause: cause,
        proposalId,
        eventId: event.id,
      }
      return [putAgent({ ...doc, levels: { ...doc.levels, [environment]: held } })]
    }
    case 'ProposalSubmitted': {
      const owner = { agentId: event.data.agentId, environment: event.data.environment }
      return [
        [authorityKeys.proposal(event.data.proposalId), { kind: 'proposal', ...owner }],
        count(read, owner, at, { proposals: 1 }),
      ]
    }
    case 'SimulationRecorded': {
      const owner = readOwner(read, event.data.proposalId)
      return owner ? [count(read, owner, at, simulationCounts(event))] : []
    }
    case 'ViolationRecorded': {
      const owner = readOwner(read, event.data.proposalId)
      // the violation names the agent itself; the proposal tells the environment
      return owner ? [count(read, { ...owner, agentId: event.data.agentId }, at, { violations: 1 })] : []
    }
    case 'ExecutionFailed': {
      const owner = readOwner(read, event.data.proposalId)
      return owner ? [count(read, owner, at, { failedExecutions: 1 })] : []
    }
    default:
      return []
  }
}

/** Who holds which authority where, and the daily track record that promotions are judged on. */
export const authority: Projection<AuthorityDoc> = {
  name: 'authority',
  version: 1,
  evolve,
}
