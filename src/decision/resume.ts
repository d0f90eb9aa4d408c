import { type DataOf, streams } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { owedVerdicts } from './decide.js'
import { DECISION_ACTOR } from './service.js'
import type { World } from './world.js'

const REASON: DataOf<'DecisionResumed'>['reason'] =
  'at start, its verdict was not the one the rules give: an event of the ledger was left unanswered'

/**
 * Answers what the ledger left unanswered, once the service answers every append: each open proposal whose
 * verdict is not the one the rules give at the ledger's last event (`owedVerdicts`) is decided again, for a
 * `DecisionResumed` cause appended on its stream, in the commit that appends the cause. The key holds the verdict
 * revision it found, so instances starting together append one cause each time, and a restart none. Resolves
 * with the causes appended.
 */
export const resumeDecisions = async (store: EventStore, world: World, now: string): Promise<number> => {
  const owed = owedVerdicts(world, now)
  const results = await Promise.all(
    owed.map((proposalId) =>
      store.append(
        streams.proposal(proposalId),
        [
          {
            type: 'DecisionResumed',
            data: { proposalId, reason: REASON },
            metadata: { actor: DECISION_ACTOR },
          },
        ],
        'any',
        {
          idempotencyKey: `decision-resumed:${proposalId}:${world.proposal(proposalId)?.verdict?.revision ?? 0}`,
        },
      ),
    ),
  )
  return results.filter((r) => !r.duplicate).length
}
