import type { Logger } from 'pino'
import { startOf } from '../../projections/as-of.js'
import type { ProjectionRunner } from '../../projections/runner.js'
import { type DataOf, streams, toLedgerEvent } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { isAnswer } from './apply.js'
import { decideAndEvolve, type Output } from './decide.js'
import { everyEvent } from './replay.js'
import { DECISION_ACTOR } from './service.js'
import { type Ledgered, World } from './world.js'

/** At least this many events before the head are decided again at start, from the snapshot boundary before them. */
export const TAIL_CHECKED = 2_000

const REASON: DataOf<'DecisionResumed'>['reason'] =
  'at start, an event near the head of the ledger was found without the verdict the rules give it'

/** An event near the head that the ledger holds without any of the answers the rules give it. */
export interface Unanswered {
  readonly eventId: string
  readonly position: number
  readonly type: string
  /** the proposals it should have drawn a verdict or a revocation on */
  readonly proposalIds: readonly string[]
  /** the answers of other kinds it should have drawn (violations, demotions, releases), by type */
  readonly otherAnswers: readonly string[]
}

const proposalOf = (output: Output): string | null =>
  output.type === 'VerdictIssued' || output.type === 'VerdictRevoked' ? output.data.proposalId : null

/**
 * The events near the head that went unanswered: the ledger's last stretch (at least TAIL_CHECKED events, from
 * the snapshot boundary of the decision world before them) decided again on the world as it was at that boundary,
 * as `replay --check` decides the whole ledger; an event the rules answer and to which the ledger holds no answer
 * is unanswered. On a ledger written by this version there is none (every event is answered in its own commit);
 * a version that decided after the commit, stopped between the two, leaves some. Reads and decides in memory only.
 */
export const unansweredNearHead = async (
  store: EventStore,
  world: ProjectionRunner,
): Promise<{ readonly checked: number; readonly unanswered: readonly Unanswered[] }> => {
  const head = world.checkpoint()
  const from = startOf(world, Math.max(0, head - TAIL_CHECKED))
  const docs = world.store
  // each stored document is read once: the world keeps its own changes, and the snapshot does not change
  const read = new Map<string, unknown>()
  const before = new World(
    (key) => {
      if (!read.has(key)) read.set(key, docs.getAt(world.name, key, from))
      return read.get(key)
    },
    (prefix, options) => docs.listAt(world.name, prefix, from, options),
  )
  const answered = new Set<string>()
  const decided: Array<{ readonly event: Unanswered; readonly id: string }> = []
  let checked = 0
  for await (const stored of everyEvent(store, from, head)) {
    checked += 1
    const { causationId } = stored.metadata
    if (isAnswer(stored as Pick<Ledgered, 'type'>) && stored.metadata.actor === DECISION_ACTOR && causationId)
      answered.add(causationId)
    const outputs = decideAndEvolve(before, toLedgerEvent(stored), 'what-if')
    if (outputs.length === 0) continue
    const proposalIds = [...new Set(outputs.map(proposalOf).filter((id): id is string => id !== null))]
    const otherAnswers = outputs.filter((o) => proposalOf(o) === null).map((o) => o.type)
    decided.push({
      id: stored.id,
      event: { eventId: stored.id, position: stored.position, type: stored.type, proposalIds, otherAnswers },
    })
  }
  return { checked, unanswered: decided.filter((d) => !answered.has(d.id)).map((d) => d.event) }
}

/**
 * Answers what the ledger left unanswered near its head, once the service answers every append: each proposal an
 * unanswered event should have drawn a verdict on is decided again, for a `DecisionResumed` cause appended on its
 * stream, with the new verdict in the same commit. The key names the unanswered event and the proposal, so that
 * instances starting together append one cause, and a later start none. Answers of other kinds (a violation, a
 * demotion, a release) are not resumed: they are logged, for `replay --check` and the operator. A cause that
 * cannot be appended is logged too: its proposal keeps the verdict it had, which never opens the gate by itself.
 * Resolves with the causes appended.
 */
export const resumeDecisions = async (
  store: EventStore,
  unanswered: readonly Unanswered[],
  log: Logger,
): Promise<number> => {
  let appended = 0
  for (const event of unanswered) {
    log.warn(
      { eventId: event.eventId, position: event.position, type: event.type, proposals: event.proposalIds },
      'an event near the head of the ledger has no answer: its proposals are decided again',
    )
    if (event.otherAnswers.length > 0)
      log.error(
        { eventId: event.eventId, position: event.position, answers: event.otherAnswers },
        'answers of an unanswered event that are not resumed (see replay --check)',
      )
    for (const proposalId of event.proposalIds) {
      const cause = {
        type: 'DecisionResumed',
        data: { proposalId, unansweredEventId: event.eventId, reason: REASON },
        metadata: { actor: DECISION_ACTOR },
      }
      try {
        const result = await store.append(streams.proposal(proposalId), [cause], 'any', {
          idempotencyKey: `decision-resumed:${event.eventId}:${proposalId}`,
        })
        if (!result.duplicate) appended += 1
      } catch (error) {
        log.error({ err: error, proposalId, eventId: event.eventId }, 'a decision could not be resumed')
      }
    }
  }
  return appended
}
