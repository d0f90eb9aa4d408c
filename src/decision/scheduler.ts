import { streams } from '../domain/events.js'
import type { EventStore, NewEvent } from '../store/port.js'
import type { Deadlines } from './world.js'

export const SCHEDULER_ACTOR = 'governance-ledger/scheduler'

export interface DeadlineNotice {
  readonly stream: string
  readonly event: NewEvent
  readonly idempotencyKey: string
}

/**
 * Deadlines are events: when one has passed, the scheduler says so in the ledger and the rules react to
 * that event, never to a clock, so replay stays deterministic and the ledger shows when it happened.
 */
export const dueNotices = (deadlines: Deadlines, now: string): DeadlineNotice[] => {
  const metadata = { actor: SCHEDULER_ACTOR }
  const expiries = Object.entries(deadlines.verdicts)
    .filter(([, d]) => d.expiresAt <= now)
    .map(([proposalId, d]) => ({
      stream: streams.proposal(proposalId),
      idempotencyKey: `deadline:verdict:${d.verdictId}`,
      event: {
        type: 'VerdictExpired',
        data: { verdictId: d.verdictId, proposalId, expiresAt: d.expiresAt },
        metadata,
      },
    }))
  const recoveries = Object.entries(deadlines.recoveries)
    .filter(([, d]) => d.deadline <= now)
    .map(([proposalId, d]) => ({
      stream: streams.proposal(proposalId),
      idempotencyKey: `deadline:recovery:${d.executionId}`,
      event: {
        type: 'RecoveryDeadlinePassed',
        data: { proposalId, executionId: d.executionId, failedAt: d.failedAt, deadline: d.deadline },
        metadata,
      },
    }))
  const proposals = Object.entries(deadlines.proposals)
    .filter(([, d]) => d.deadline <= now)
    .map(([proposalId, d]) => ({
      stream: streams.proposal(proposalId),
      idempotencyKey: `deadline:proposal:${proposalId}`,
      event: {
        type: 'ProposalExpired',
        data: { proposalId, submittedAt: d.submittedAt, deadline: d.deadline },
        metadata,
      },
    }))
  return [...expiries, ...recoveries, ...proposals]
}

/** Appends every notice that is due; safe to run again, the idempotency keys keep each notice single. */
export const appendDueNotices = async (
  store: EventStore,
  deadlines: Deadlines,
  now: Date,
): Promise<number> => {
  const notices = dueNotices(deadlines, now.toISOString())
  const results = await Promise.all(
    notices.map((n) => store.append(n.stream, [n.event], 'any', { idempotencyKey: n.idempotencyKey })),
  )
  return results.filter((r) => !r.duplicate).length
}
