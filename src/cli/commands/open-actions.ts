import { ageSeconds, type OpenActionDoc, type OpenState } from '../../../projections/open-actions.js'
import { clockOf, type Moment } from '../../application/as-of.js'
import type { Config } from '../../config.js'
import type { ReadRuntime } from '../data-folder.js'
import { withViews } from '../data-folder.js'
import { duration, table } from '../format.js'
import { type Context, done, type Outcome } from '../outcome.js'

const PAGE = 1000

/** Every open action that matches, in proposal id order, read one stored page at a time. */
export const findOpenActions = (
  runtime: ReadRuntime,
  match: (doc: OpenActionDoc) => boolean,
): OpenActionDoc[] => {
  const found: OpenActionDoc[] = []
  let after: string | undefined
  for (;;) {
    const page = runtime.views.openActions.list(
      'open:',
      after === undefined ? { limit: PAGE } : { after, limit: PAGE },
    )
    for (const [, doc] of page) if (match(doc)) found.push(doc)
    const last = page.at(-1)
    if (last === undefined || page.length < PAGE) return found
    after = last[0]
  }
}

export interface OpenActionFilter {
  readonly state: OpenState | undefined
  readonly agentId: string | undefined
  readonly environment: string | undefined
  readonly asOf?: Moment | undefined
}

const stateText = (doc: OpenActionDoc): string => {
  if (doc.state !== 'failed') return doc.state
  const rollback = doc.rollback === 'none' ? 'no rollback yet' : `rollback ${doc.rollback}`
  return `failed (${rollback}${doc.recoveryOverdue ? ', recovery overdue' : ''})`
}

const verdictText = (doc: OpenActionDoc): string => {
  const v = doc.verdict
  if (!v) return '-'
  const ended = v.ended ? ` (${v.ended})` : ''
  return v.decision === 'allow' ? `allow${ended}` : `block: ${v.failedChecks.join(', ')}${ended}`
}

/** `open-actions`: the actions in flight, each with how long it has been in its state. */
export const openActionsCommand = (
  config: Config,
  filter: OpenActionFilter,
  context: Context,
): Promise<Outcome> =>
  withViews(
    config,
    ['openActions'],
    (runtime) => {
      const now = clockOf(runtime.moment, context.now())
      const asOf = runtime.views.openActions.checkpoint()
      const actions = findOpenActions(
        runtime,
        (doc) =>
          (filter.state === undefined || doc.state === filter.state) &&
          (filter.agentId === undefined || doc.agentId === filter.agentId) &&
          (filter.environment === undefined || doc.environment === filter.environment),
      ).map((doc) => ({ ...doc, ageSeconds: ageSeconds(doc, now) }))
      const text =
        actions.length === 0
          ? `No open actions (as of ledger position ${asOf}).`
          : [
              `${actions.length} open action${actions.length === 1 ? '' : 's'} (as of ledger position ${asOf})`,
              '',
              table(
                [
                  { header: 'PROPOSAL' },
                  { header: 'STATE' },
                  { header: 'AGE', align: 'right' },
                  { header: 'AGENT' },
                  { header: 'TOOL.ACTION' },
                  { header: 'RESOURCE' },
                  { header: 'ENV' },
                  { header: 'IMPACT' },
                  { header: 'VERDICT' },
                ],
                actions.map((a) => [
                  a.proposalId,
                  stateText(a),
                  duration(a.ageSeconds),
                  a.agentId,
                  `${a.tool}.${a.action}`,
                  a.resource,
                  a.environment,
                  a.impact,
                  verdictText(a),
                ]),
              ),
            ].join('\n')
      return done({ actions, asOf }, text)
    },
    filter.asOf,
  )
