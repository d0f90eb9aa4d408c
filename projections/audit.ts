import { sha256Hex } from '../src/domain/canonical.js'
import type {
  DomainEvent,
  EventOf,
  KillSwitchRef,
  KillSwitchScope,
  LedgerEvent,
} from '../src/domain/events.js'
import type { DocChange, DocReader, Projection } from './projection.js'

export interface TimelineEntry {
  readonly position: number
  readonly eventId: string
  readonly type: string
  readonly recordedAt: string
  readonly actor: string
  readonly hash: string
}

export interface Approver {
  readonly approver: string
  readonly role: string
  readonly actionDigest: string
  readonly eventId: string
}

export interface KillSwitchActor {
  readonly actor: string
  readonly scope: KillSwitchScope
  readonly target: string | null
  readonly action: 'engaged' | 'released'
  readonly eventId: string
}

export interface VerdictRef {
  readonly verdictId: string
  readonly revision: number
  readonly decision: 'allow' | 'block'
  readonly eventId: string
}

/** Where an action's story stands, from the events of its timeline in ledger order. */
export type ActionOutcome =
  | 'submitted'
  | 'allowed'
  | 'blocked'
  | 'revoked'
  | 'expired'
  | 'executing'
  | 'succeeded'
  | 'failed'
  | 'rolling-back'
  | 'recovered'
  | 'rollback-failed'
  | 'withdrawn'
  | 'lapsed'

/**
 * key `action:<proposalId>`: what changed, who changed it, how fast it can be undone, and where it stands. Its
 * timeline is one ActionEventDoc per event (under auditKeys.actionEvents), so that an action re-decided
 * thousands of times keeps a small document that is not copied whole on each new event.
 */
export interface ActionDoc {
  readonly kind: 'action'
  readonly proposalId: string
  readonly submittedAt: string
  /** the ledger position of the submission: where the action's entries sit in the agent and resource indexes */
  readonly submittedPosition: number
  readonly outcome: ActionOutcome
  /** whether an execution began: later verdicts, revocations and expiries no longer change the outcome */
  readonly executed: boolean
  readonly violation: boolean
  /** with the verdict's version in the proposal's stream: the current verdict is read from there on */
  readonly latestVerdict: (VerdictRef & { readonly streamVersion: number }) | null
  readonly what: {
    readonly tool: string
    readonly action: string
    readonly resource: string
    readonly environment: string
    /** the plan itself stays in the ledger, at submittedPosition: no document copies an event's payload */
    readonly planHash: string
    /** what the verdict and every piece of evidence bind to */
    readonly actionDigest: string
    /** the snapshot version the proposal was based on */
    readonly resourceVersionBefore: string
    /** as last reported by the execution or its rollback; null until then, or when not reported */
    readonly resourceVersionAfter: string | null
  }
  readonly who: {
    readonly agentId: string
    readonly executingIdentity: string
    readonly executor: string | null
    readonly approvers: readonly Approver[]
    /** of the latest verdict */
    readonly policyVersion: number | null
    readonly policyOwner: string | null
    /** who engaged (and later released) the kill switches that revoked this action's verdicts */
    readonly killSwitchActors: readonly KillSwitchActor[]
  }
  readonly howFast: {
    /** from the latest rollback test */
    readonly rollbackExpectedSeconds: number | null
    readonly failedAt: string | null
    readonly recoveredAt: string | null
    readonly timeToRecoverySeconds: number | null
  }
}

/** key `action-event:<slot>:<position>`: one event of an action's timeline; a verdict names itself too */
export interface ActionEventDoc extends TimelineEntry {
  readonly kind: 'event'
  readonly verdict?: Omit<VerdictRef, 'eventId'>
}

/** key `agent:<agentId>`: how many proposals the agent submitted (each one an IndexEntryDoc) */
export interface AgentIndexDoc {
  readonly kind: 'agent'
  readonly agentId: string
  readonly proposalCount: number
}

/**
 * One proposal of an agent's or a resource's index, keyed by the position it was submitted at: the index grows
 * by one small document per proposal, however many it holds, and reads back a page at a time in order.
 */
export interface IndexEntryDoc {
  readonly kind: 'entry'
  readonly proposalId: string
}

export interface Observation {
  readonly version: string
  readonly digest: string
  readonly observedAt: string
  readonly eventId: string
}

/** key `resource:<environment>:<resource>`: how many proposals touch it (each one an IndexEntryDoc), and its last observed state */
export interface ResourceIndexDoc {
  readonly kind: 'resource'
  readonly environment: string
  readonly resource: string
  readonly proposalCount: number
  readonly lastObservation: Observation | null
}

/** key `policy:<version>` */
export interface PolicyOwnerDoc {
  readonly kind: 'policy'
  readonly version: number
  readonly owner: string
}

/** key `killswitch:<scope>.<target|*>`: its last engagement, and what that engagement revoked */
export interface KillSwitchDoc {
  readonly kind: 'killswitch'
  readonly scope: KillSwitchScope
  readonly target: string | null
  readonly engaged: boolean
  readonly actor: string
  readonly eventId: string
  readonly engagement: TimelineEntry
  readonly revokedProposalIds: readonly string[]
}

export type AuditDoc =
  | ActionDoc
  | ActionEventDoc
  | AgentIndexDoc
  | IndexEntryDoc
  | ResourceIndexDoc
  | PolicyOwnerDoc
  | KillSwitchDoc

/** A fixed-width slot for a name that may hold any character, so that no index prefix is another's prefix. */
const slot = (...parts: string[]): string => sha256Hex(parts.join('\u0000')).slice(0, 32)

export const auditKeys = {
  action: (proposalId: string) => `action:${proposalId}`,
  /** the events of an action's timeline, in ledger order */
  actionEvents: (proposalId: string) => `action-event:${slot(proposalId)}:`,
  agent: (agentId: string) => `agent:${agentId}`,
  /** the entries of an agent's index, in the order submitted */
  agentEntries: (agentId: string) => `agent-entry:${slot(agentId)}:`,
  resource: (environment: string, resource: string) => `resource:${environment}:${resource}`,
  /** the entries of a resource's index, in the order submitted */
  resourceEntries: (environment: string, resource: string) =>
    `resource-entry:${slot(environment, resource)}:`,
  /** an entry under an index's prefix: positions are fixed-width, so key order is ledger order */
  entry: (entries: string, position: number) => `${entries}${String(position).padStart(16, '0')}`,
  policy: (version: number) => `policy:${version}`,
  killSwitch: (ref: KillSwitchRef) => `killswitch:${ref.scope}.${ref.target ?? '*'}`,
} as const

// ---------- evolve ----------

type Read = DocReader<AuditDoc>
type Change = DocChange<AuditDoc>
type Event = LedgerEvent<DomainEvent>

const readKind = <K extends AuditDoc['kind']>(read: Read, key: string, kind: K) => {
  const doc = read(key)
  return doc?.kind === kind ? (doc as Extract<AuditDoc, { kind: K }>) : undefined
}

const entryOf = (event: Event): TimelineEntry => ({
  position: event.position,
  eventId: event.id,
  type: event.type,
  recordedAt: event.recordedAt,
  actor: event.metadata.actor,
  hash: event.hash,
})

/** The timeline document of an entry; the key keeps entries in ledger order and each one once. */
const timelineChange = (
  proposalId: string,
  entry: TimelineEntry,
  verdict?: ActionEventDoc['verdict'],
): Change => [
  auditKeys.entry(auditKeys.actionEvents(proposalId), entry.position),
  verdict === undefined ? { kind: 'event', ...entry } : { kind: 'event', ...entry, verdict },
]

const OUTCOME_OF: Partial<Record<string, ActionOutcome>> = {
  VerdictRevoked: 'revoked',
  VerdictExpired: 'expired',
  ExecutionStarted: 'executing',
  ExecutionSucceeded: 'succeeded',
  ExecutionFailed: 'failed',
  RollbackStarted: 'rolling-back',
  RollbackCompleted: 'recovered',
  RollbackFailed: 'rollback-failed',
  ProposalWithdrawn: 'withdrawn',
  ProposalExpired: 'lapsed',
}

/** Where the action stands after the next event of its timeline (`decision`: of a verdict). */
export const nextOutcome = (
  doc: Pick<ActionDoc, 'outcome' | 'executed'>,
  type: string,
  decision?: VerdictRef['decision'],
): Pick<ActionDoc, 'outcome' | 'executed'> => {
  // an action withdrawn or lapsed stays so: a verdict or a deadline the decision service or the scheduler read
  // before the end and wrote after it changes nothing; only a start, should one be recorded, tells more
  if ((doc.outcome === 'withdrawn' || doc.outcome === 'lapsed') && type !== 'ExecutionStarted') return doc
  // a verdict issued once execution began does not change what happened, nor does a revocation or expiry
  if (type === 'VerdictIssued') {
    return doc.executed ? doc : { outcome: decision === 'allow' ? 'allowed' : 'blocked', executed: false }
  }
  const next = OUTCOME_OF[type]
  // nor does the time limit on open proposals, noticed after the start
  if (next === undefined || (doc.executed && (next === 'revoked' || next === 'expired' || next === 'lapsed')))
    return doc
  return { outcome: next, executed: doc.executed || next === 'executing' }
}

const withActor = (actors: readonly KillSwitchActor[], actor: KillSwitchActor): readonly KillSwitchActor[] =>
  actors.some((a) => a.eventId === actor.eventId) ? actors : [...actors, actor]

const appendOnce = (ids: readonly string[], id: string): readonly string[] =>
  ids.includes(id) ? ids : [...ids, id]

const submitted = (read: Read, event: Event & EventOf<'ProposalSubmitted'>): Change[] => {
  const d = event.data
  if (readKind(read, auditKeys.action(d.proposalId), 'action')) return []
  const action: ActionDoc = {
    kind: 'action',
    proposalId: d.proposalId,
    submittedAt: event.recordedAt,
    submittedPosition: event.position,
    outcome: 'submitted',
    executed: false,
    violation: false,
    latestVerdict: null,
    what: {
      tool: d.tool,
      action: d.action,
      resource: d.resource,
      environment: d.environment,
      planHash: d.planHash,
      actionDigest: d.actionDigest,
      resourceVersionBefore: d.snapshot.version,
      resourceVersionAfter: null,
    },
    who: {
      agentId: d.agentId,
      executingIdentity: d.executingIdentity,
      executor: null,
      approvers: [],
      policyVersion: null,
      policyOwner: null,
      killSwitchActors: [],
    },
    howFast: {
      rollbackExpectedSeconds: null,
      failedAt: null,
      recoveredAt: null,
      timeToRecoverySeconds: null,
    },
  }
  const agentKey = auditKeys.agent(d.agentId)
  const agent = readKind(read, agentKey, 'agent') ?? { kind: 'agent', agentId: d.agentId, proposalCount: 0 }
  const resourceKey = auditKeys.resource(d.environment, d.resource)
  const resource = readKind(read, resourceKey, 'resource') ?? emptyResource(d.environment, d.resource)
  const entry: IndexEntryDoc = { kind: 'entry', proposalId: d.proposalId }
  return [
    [auditKeys.action(d.proposalId), action],
    timelineChange(d.proposalId, entryOf(event)),
    [agentKey, { ...agent, proposalCount: agent.proposalCount + 1 }],
    [auditKeys.entry(auditKeys.agentEntries(d.agentId), event.position), entry],
    [resourceKey, { ...resource, proposalCount: resource.proposalCount + 1 }],
    [auditKeys.entry(auditKeys.resourceEntries(d.environment, d.resource), event.position), entry],
  ]
}

const emptyResource = (environment: string, resource: string): ResourceIndexDoc => ({
  kind: 'resource',
  environment,
  resource,
  proposalCount: 0,
  lastObservation: null,
})

const observed = (read: Read, event: Event & EventOf<'StateObserved'>): Change[] => {
  const { environment, resource, version, digest, observedAt } = event.data
  const key = auditKeys.resource(environment, resource)
  const doc = readKind(read, key, 'resource') ?? emptyResource(environment, resource)
  return [[key, { ...doc, lastObservation: { version, digest, observedAt, eventId: event.id } }]]
}

const engaged = (event: Event & EventOf<'KillSwitchEngaged'>): Change[] => {
  const { scope, target } = event.data
  const doc: KillSwitchDoc = {
    kind: 'killswitch',
    scope,
    target,
    engaged: true,
    actor: event.metadata.actor,
    eventId: event.id,
    engagement: entryOf(event),
    revokedProposalIds: [],
  }
  return [[auditKeys.killSwitch(event.data), doc]]
}

/** A release is part of the story of every action its engagement revoked. */
const released = (read: Read, event: Event & EventOf<'KillSwitchReleased'>): Change[] => {
  const key = auditKeys.killSwitch(event.data)
  const doc = readKind(read, key, 'killswitch')
  if (!doc) return []
  const { scope, target } = event.data
  const actor: KillSwitchActor = {
    actor: event.metadata.actor,
    scope,
    target,
    action: 'released',
    eventId: event.id,
  }
  const actions: Change[] = doc.revokedProposalIds.flatMap((proposalId): Change[] => {
    const action = readKind(read, auditKeys.action(proposalId), 'action')
    if (!action) return []
    const who = { ...action.who, killSwitchActors: withActor(action.who.killSwitchActors, actor) }
    return [[auditKeys.action(proposalId), { ...action, who }], timelineChange(proposalId, entryOf(event))]
  })
  return [...actions, [key, { ...doc, engaged: false, revokedProposalIds: [] }]]
}

/** The action after an event about it (its outcome and timeline aside), and any other document the event changes. */
const step = (read: Read, doc: ActionDoc, event: Event): [ActionDoc, ...Change[]] => {
  const at = event.recordedAt
  switch (event.type) {
    case 'ApprovalGranted': {
      const { approver, role, actionDigest } = event.data
      const approvers = [...doc.who.approvers, { approver, role, actionDigest, eventId: event.id }]
      return [{ ...doc, who: { ...doc.who, approvers } }]
    }
    case 'RollbackTested':
      return [
        { ...doc, howFast: { ...doc.howFast, rollbackExpectedSeconds: event.data.expectedRecoverySeconds } },
      ]
    case 'VerdictIssued': {
      const { verdictId, revision, decision, policyVersion } = event.data
      const policy =
        policyVersion === null ? undefined : readKind(read, auditKeys.policy(policyVersion), 'policy')
      return [
        {
          ...doc,
          who: { ...doc.who, policyVersion, policyOwner: policy?.owner ?? null },
          latestVerdict: {
            verdictId,
            revision,
            decision,
            eventId: event.id,
            streamVersion: event.streamVersion,
          },
        },
      ]
    }
    case 'VerdictRevoked': {
      const ref = event.data.killSwitch
      const killSwitch = ref ? readKind(read, auditKeys.killSwitch(ref), 'killswitch') : undefined
      if (!killSwitch) return [doc]
      const { scope, target, actor, eventId, engagement } = killSwitch
      const who = {
        ...doc.who,
        killSwitchActors: withActor(doc.who.killSwitchActors, {
          actor,
          scope,
          target,
          action: 'engaged',
          eventId,
        }),
      }
      const revokedProposalIds = appendOnce(killSwitch.revokedProposalIds, doc.proposalId)
      return [
        { ...doc, who },
        // the engagement, which came before this revocation, joins the timeline at its own position
        timelineChange(doc.proposalId, engagement),
        [auditKeys.killSwitch(killSwitch), { ...killSwitch, revokedProposalIds }],
      ]
    }
    case 'ViolationRecorded':
      return [{ ...doc, violation: true }]
    case 'ExecutionStarted':
      return [{ ...doc, who: { ...doc.who, executor: event.data.executor } }]
    case 'ExecutionSucceeded':
      return [{ ...doc, what: { ...doc.what, resourceVersionAfter: event.data.resourceVersionAfter } }]
    case 'ExecutionFailed':
      return [
        {
          ...doc,
          what: { ...doc.what, resourceVersionAfter: event.data.resourceVersionAfter },
          howFast: { ...doc.howFast, failedAt: at, recoveredAt: null, timeToRecoverySeconds: null },
        },
      ]
    case 'RollbackCompleted': {
      const { failedAt } = doc.howFast
      const timeToRecoverySeconds = failedAt === null ? null : (Date.parse(at) - Date.parse(failedAt)) / 1000
      return [
        {
          ...doc,
          what: { ...doc.what, resourceVersionAfter: event.data.resourceVersionAfter },
          howFast: { ...doc.howFast, recoveredAt: at, timeToRecoverySeconds },
        },
      ]
    }
    default:
      return [doc]
  }
}

const proposalIdOf = (event: Event): string | undefined => {
  const data = event.data as { proposalId?: unknown }
  return typeof data.proposalId === 'string' ? data.proposalId : undefined
}

const evolve = (read: Read, event: Event): Change[] => {
  switch (event.type) {
    case 'PolicyPublished': {
      const { version, owner } = event.data
      return [[auditKeys.policy(version), { kind: 'policy', version, owner }]]
    }
    case 'KillSwitchEngaged':
      return engaged(event)
    case 'KillSwitchReleased':
      return released(read, event)
    case 'StateObserved':
      return observed(read, event)
    case 'ProposalSubmitted':
      return submitted(read, event)
  }
  const proposalId = proposalIdOf(event)
  const doc = proposalId === undefined ? undefined : readKind(read, auditKeys.action(proposalId), 'action')
  if (!doc) return []
  const [action, ...others] = step(read, doc, event)
  const verdict =
    event.type === 'VerdictIssued'
      ? { verdictId: event.data.verdictId, revision: event.data.revision, decision: event.data.decision }
      : undefined
  return [
    [auditKeys.action(doc.proposalId), { ...action, ...nextOutcome(action, event.type, verdict?.decision) }],
    ...others,
    timelineChange(doc.proposalId, entryOf(event), verdict),
  ]
}

/** An action's timeline, read from its event documents, and the verdicts on it, both in ledger order. */
export const actionStory = (
  events: Iterable<AuditDoc>,
): { timeline: TimelineEntry[]; verdicts: VerdictRef[] } => {
  const timeline: TimelineEntry[] = []
  const verdicts: VerdictRef[] = []
  for (const doc of events) {
    if (doc.kind !== 'event') continue
    const { kind: _kind, verdict, ...entry } = doc
    timeline.push(entry)
    if (verdict) verdicts.push({ ...verdict, eventId: entry.eventId })
  }
  return { timeline, verdicts }
}

/** Reads the audit documents (a projection runner, or any store of them). */
export interface AuditReader {
  get(key: string): AuditDoc | undefined
  list(prefix: string): Array<[string, AuditDoc]>
}

/** The action document of a proposal; undefined when the audit view has none. */
export const actionOf = (audit: AuditReader, proposalId: string): ActionDoc | undefined => {
  const doc = audit.get(auditKeys.action(proposalId))
  return doc?.kind === 'action' ? doc : undefined
}

/** The proposals of an agent's or a resource's index (its entries, or a page of them), in the order submitted. */
export const indexedProposals = (entries: ReadonlyArray<readonly [string, AuditDoc]>): string[] =>
  entries.flatMap(([, doc]) => (doc.kind === 'entry' ? [doc.proposalId] : []))

/**
 * An action as auditors see it: what changed, who, how fast, where it stands, its verdicts and its whole
 * timeline, read together in one synchronous step (no commit comes between them); undefined for no action.
 * `verdictFrom` is the version of the proposal's stream its current verdict can be read from, so that an
 * action decided hundreds of times does not read every verdict again; the plan is read from the submission, at
 * `submittedPosition`.
 */
export const auditedAction = (audit: AuditReader, proposalId: string) => {
  const doc = actionOf(audit, proposalId)
  if (!doc) return undefined
  const story = actionStory(audit.list(auditKeys.actionEvents(proposalId)).map(([, event]) => event))
  const { kind: _kind, submittedPosition, executed: _executed, latestVerdict, ...action } = doc
  return {
    action: { ...action, ...story },
    verdictFrom: latestVerdict?.streamVersion ?? 1,
    submittedPosition,
  }
}

export type AuditedAction = NonNullable<ReturnType<typeof auditedAction>>['action']

/** Per action: what changed, who changed it, how fast it can be undone; with agent and resource indexes. */
export const audit: Projection<AuditDoc> = {
  name: 'audit',
  // 2: an index holds one entry document per proposal instead of a list that grew with every one
  // 3: an action's timeline is one document per event instead of a list copied on each new one
  // 5: an action keeps its plan's hash, not the plan: documents stay small however large a plan the ledger holds
  // 6: an action withdrawn or lapsed stays so, whatever verdict or deadline notice lands after its end
  version: 6,
  evolve,
}
