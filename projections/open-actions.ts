import {
  type CheckName,
  type DomainEvent,
  type EventOf,
  EvidenceCheck,
  type ImpactClass,
  type LedgerEvent,
} from '../src/domain/events.js'
import type { DocChange, DocReader, Projection } from './projection.js'

export interface OpenVerdict {
  readonly verdictId: string
  readonly decision: 'allow' | 'block'
  readonly failedChecks: readonly CheckName[]
  readonly expiresAt: string
  /** an allow ends when it is revoked (a kill switch, say) or expires before it is executed */
  readonly ended: 'revoked' | 'expired' | null
}

interface OpenActionBase {
  readonly proposalId: string
  readonly agentId: string
  readonly tool: string
  readonly action: string
  readonly resource: string
  readonly environment: string
  /** from the latest verdict, else the proposal's expected impact */
  readonly impact: ImpactClass
  /** when the action entered its current state */
  readonly since: string
  readonly submittedAt: string
  readonly verdict: OpenVerdict | null
}

export type OpenStateFields =
  /** awaiting-evidence: no verdict yet, blocked only for missing evidence, or its allow expired */
  | { readonly state: 'awaiting-evidence' }
  /** blocked: a gate (policy, inventory, authority, kill switch) failed, or its allow was revoked */
  | { readonly state: 'blocked' }
  | { readonly state: 'allowed' }
  | { readonly state: 'executing'; readonly executionId: string; readonly startedAt: string }
  | {
      readonly state: 'failed'
      readonly executionId: string
      readonly failedAt: string
      readonly error: string
      readonly rollback: 'none' | 'running' | 'failed'
      /** true once the recovery time objective passed without a completed rollback */
      readonly recoveryOverdue: boolean
    }

/** key `open:<proposalId>`: an action not yet done with; succeeded, recovered and withdrawn ones leave */
export type OpenActionDoc = OpenActionBase & OpenStateFields
export type OpenState = OpenActionDoc['state']

export const openKey = (proposalId: string) => `open:${proposalId}`

/** Seconds the action has been in its state, as of now; for a failure, its age. */
export const ageSeconds = (doc: Pick<OpenActionDoc, 'since'>, now: Date | string): number => {
  const nowMs = typeof now === 'string' ? Date.parse(now) : now.getTime()
  return Math.max(0, Math.floor((nowMs - Date.parse(doc.since)) / 1000))
}

// ---------- evolve ----------

const evidenceChecks: ReadonlySet<CheckName> = new Set(EvidenceCheck.options)

const baseOf = (doc: OpenActionDoc): OpenActionBase => {
  const { proposalId, agentId, tool, action, resource, environment, impact, since, submittedAt, verdict } =
    doc
  return { proposalId, agentId, tool, action, resource, environment, impact, since, submittedAt, verdict }
}

/** Moves the action to a state; since changes only when the state does. */
const enter = (
  doc: OpenActionDoc,
  at: string,
  next: OpenStateFields,
  base: Partial<OpenActionBase> = {},
) => ({
  ...baseOf(doc),
  ...base,
  since: doc.state === next.state ? doc.since : at,
  ...next,
})

const beforeExecution = (doc: OpenActionDoc) =>
  doc.state === 'awaiting-evidence' || doc.state === 'blocked' || doc.state === 'allowed'

const onVerdict = (
  doc: OpenActionDoc,
  event: EventOf<'VerdictIssued'> & { recordedAt: string },
): OpenActionDoc => {
  const failedChecks = event.data.checks.filter((c) => c.status === 'fail').map((c) => c.check)
  // a block that only misses evidence can still turn into an allow; a failed gate cannot
  const onlyEvidence = failedChecks.length > 0 && failedChecks.every((c) => evidenceChecks.has(c))
  const state = event.data.decision === 'allow' ? 'allowed' : onlyEvidence ? 'awaiting-evidence' : 'blocked'
  const { verdictId, decision, expiresAt, impact } = event.data
  return enter(
    doc,
    event.recordedAt,
    { state },
    { impact, verdict: { verdictId, decision, failedChecks, expiresAt, ended: null } },
  )
}

/** An allow that ends before it is executed sends the action back. */
const endAllow = (
  doc: OpenActionDoc,
  at: string,
  verdictId: string,
  ended: 'revoked' | 'expired',
): OpenActionDoc | undefined => {
  if (doc.state !== 'allowed' || doc.verdict?.verdictId !== verdictId) return undefined
  const state = ended === 'revoked' ? 'blocked' : 'awaiting-evidence'
  return enter(doc, at, { state }, { verdict: { ...doc.verdict, ended } })
}

const next = (
  doc: OpenActionDoc | undefined,
  event: LedgerEvent<DomainEvent>,
): OpenActionDoc | null | undefined => {
  const at = event.recordedAt
  if (event.type === 'ProposalSubmitted') {
    const { proposalId, agentId, tool, action, resource, environment, expectedImpact } = event.data
    return doc
      ? undefined
      : {
          proposalId,
          agentId,
          tool,
          action,
          resource,
          environment,
          impact: expectedImpact,
          since: at,
          submittedAt: at,
          verdict: null,
          state: 'awaiting-evidence',
        }
  }
  if (!doc) return undefined
  switch (event.type) {
    case 'VerdictIssued':
      // a verdict issued once execution began does not change what is happening
      return beforeExecution(doc) ? onVerdict(doc, event) : undefined
    case 'VerdictRevoked':
      return endAllow(doc, at, event.data.verdictId, 'revoked')
    case 'VerdictExpired':
      return endAllow(doc, at, event.data.verdictId, 'expired')
    case 'ExecutionStarted':
      return enter(doc, at, { state: 'executing', executionId: event.data.executionId, startedAt: at })
    case 'ExecutionFailed':
      return enter(doc, at, {
        state: 'failed',
        executionId: event.data.executionId,
        failedAt: at,
        error: event.data.error,
        rollback: 'none',
        recoveryOverdue: false,
      })
    case 'RollbackStarted':
      return doc.state === 'failed' ? { ...doc, rollback: 'running' } : undefined
    case 'RollbackFailed':
      return doc.state === 'failed' ? { ...doc, rollback: 'failed' } : undefined
    case 'RecoveryDeadlinePassed':
      return doc.state === 'failed' ? { ...doc, recoveryOverdue: true } : undefined
    case 'ProposalExpired':
      // an expiry noticed after the start does not end an execution
      return beforeExecution(doc) ? null : undefined
    case 'ExecutionSucceeded':
    case 'RollbackCompleted':
    case 'ProposalWithdrawn':
      return null
    default:
      return undefined
  }
}

const proposalIdOf = (event: LedgerEvent<DomainEvent>): string | undefined => {
  const data = event.data as { proposalId?: unknown }
  // a demotion names the proposal that caused it, but is no step of that action
  return event.type !== 'AgentDemoted' && typeof data.proposalId === 'string' ? data.proposalId : undefined
}

const evolve = (
  read: DocReader<OpenActionDoc>,
  event: LedgerEvent<DomainEvent>,
): DocChange<OpenActionDoc>[] => {
  const proposalId = proposalIdOf(event)
  if (proposalId === undefined) return []
  const key = openKey(proposalId)
  const doc = next(read(key), event)
  return doc === undefined ? [] : [[key, doc]]
}

/** The actions still in flight: waiting, blocked, allowed, executing, or failed and not yet recovered. */
export const openActions: Projection<OpenActionDoc> = {
  name: 'open-actions',
  version: 1,
  evolve,
}
