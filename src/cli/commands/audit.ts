import { type AuditedAction, auditedAction, auditKeys, indexedProposals } from '../../../projections/audit.js'
import {
  type AgentDoc,
  type AuthorityDoc,
  authorityKeys,
  trackDaysOf,
  trackRecord,
} from '../../../projections/authority.js'
import { clockOf, type Moment } from '../../application/as-of.js'
import { actionSummaries, currentVerdict, type VerdictView, withPlan } from '../../application/queries.js'
import type { Config } from '../../config.js'
import type { TrackRecord } from '../../domain/events.js'
import { withViews } from '../data-folder.js'
import { CliError } from '../errors.js'
import { duration, fields, orDash, shortHash, table } from '../format.js'
import { type Context, done, type Outcome } from '../outcome.js'

const isAgent = (doc: AuthorityDoc | undefined): doc is AgentDoc => doc?.kind === 'agent'

const TRACK_DAYS = 30

const verdictText = (verdict: VerdictView | null): string => {
  if (!verdict) return 'Current verdict: none yet'
  const state = verdict.revoked ? ', revoked' : verdict.expired ? ', expired' : ''
  const policy = verdict.policyVersion === null ? 'no policy' : `policy v${verdict.policyVersion}`
  const checks = table(
    [{ header: 'CHECK' }, { header: 'RESULT' }, { header: 'REASON' }],
    verdict.checks.map((c) => [c.check, c.status, c.reason]),
  )
  return [
    `Current verdict: ${verdict.decision} (revision ${verdict.revision}, ${policy}, expires ${verdict.expiresAt}${state})`,
    checks,
  ].join('\n')
}

const actionText = (doc: AuditedAction, verdict: VerdictView | null, asOf: number): string => {
  const { what, who, howFast, outcome, timeline } = doc
  const approvers = who.approvers.map((a) => `${a.approver} (${a.role})`).join(', ')
  const killSwitches = who.killSwitchActors
    .map((k) => `${k.actor} ${k.action} ${k.scope}${k.target === null ? '' : ` ${k.target}`}`)
    .join('; ')
  return [
    `Action ${doc.proposalId}: ${outcome} (as of ledger position ${asOf})`,
    '',
    'What changed',
    fields([
      ['tool.action', `${what.tool}.${what.action}`],
      ['resource', `${what.resource} in ${what.environment}`],
      ['plan hash', what.planHash],
      ['action digest', what.actionDigest],
      ['version before', what.resourceVersionBefore],
      ['version after', orDash(what.resourceVersionAfter)],
      ['submitted', doc.submittedAt],
    ]),
    '',
    'Who changed it',
    fields([
      ['agent', who.agentId],
      ['executing identity', who.executingIdentity],
      ['executor', orDash(who.executor)],
      ['approvers', orDash(approvers)],
      [
        'policy',
        who.policyVersion === null ? '-' : `v${who.policyVersion}, owner ${orDash(who.policyOwner)}`,
      ],
      ['kill switches', orDash(killSwitches)],
    ]),
    '',
    'How fast can we undo it',
    fields([
      ['rollback expected', duration(howFast.rollbackExpectedSeconds)],
      ['failed at', orDash(howFast.failedAt)],
      ['recovered at', orDash(howFast.recoveredAt)],
      ['time to recovery', duration(howFast.timeToRecoverySeconds)],
    ]),
    '',
    verdictText(verdict),
    '',
    `Timeline (${timeline.length} events)`,
    table(
      [
        { header: 'POSITION', align: 'right' },
        { header: 'RECORDED AT' },
        { header: 'TYPE' },
        { header: 'ACTOR' },
        { header: 'EVENT ID' },
        { header: 'HASH' },
      ],
      timeline.map((e) => [String(e.position), e.recordedAt, e.type, e.actor, e.eventId, shortHash(e.hash)]),
    ),
  ].join('\n')
}

/** `audit action ID`: what changed, who changed it, how fast it can be undone, with its whole timeline. */
export const auditAction = (config: Config, proposalId: string, moment?: Moment): Promise<Outcome> =>
  withViews(
    config,
    ['audit'],
    async (runtime) => {
      const asOf = runtime.views.audit.checkpoint()
      const audited = auditedAction(runtime.views.audit, proposalId)
      if (!audited) throw new CliError(`no action ${proposalId} in the ledger (as of position ${asOf})`)
      const { verdictFrom, submittedPosition } = audited
      const action = await withPlan(runtime.store, audited.action, submittedPosition)
      const verdict = await currentVerdict(runtime.store, proposalId, verdictFrom, asOf)
      return done({ ...action, currentVerdict: verdict, asOf }, actionText(action, verdict, asOf))
    },
    moment,
  )

const levelCause = (held: AgentDoc['levels'][string]): string =>
  held.cause === 'promotion'
    ? `promoted (request ${held.requestId}, approved by ${held.approvedBy})`
    : `demoted for ${held.demotionCause} on ${held.proposalId}: ${held.reason}`

const trackText = (track: Readonly<Record<string, TrackRecord>>): string =>
  table(
    [
      { header: 'ENVIRONMENT' },
      { header: 'PROPOSALS', align: 'right' },
      { header: 'SIMULATIONS PASSED', align: 'right' },
      { header: 'SURVIVAL', align: 'right' },
      { header: 'VIOLATIONS', align: 'right' },
      { header: 'FAILED EXECUTIONS', align: 'right' },
    ],
    Object.entries(track).map(([environment, t]) => [
      environment,
      String(t.proposals),
      String(t.simulationsPassed),
      `${Math.round(t.simulationSurvivalRate * 1000) / 10}%`,
      String(t.violations),
      String(t.failedExecutions),
    ]),
  )

/** `audit agent ID`: the authority an agent holds where, how it got there, its track record and actions. */
export const auditAgent = (
  config: Config,
  agentId: string,
  context: Context,
  moment?: Moment,
): Promise<Outcome> =>
  withViews(
    config,
    ['authority', 'audit'],
    (runtime) => {
      const { authority, audit } = runtime.views
      const asOf = Math.min(authority.checkpoint(), audit.checkpoint())
      const found = authority.get(authorityKeys.agent(agentId))
      const agent = isAgent(found) ? found : null
      const index = audit.get(auditKeys.agent(agentId))
      const proposalIds = indexedProposals(audit.list(auditKeys.agentEntries(agentId)))
      if (!agent && index?.kind !== 'agent')
        throw new CliError(`no agent ${agentId} in the ledger (as of position ${asOf})`)
      const actions = actionSummaries(audit, proposalIds)
      const windowEnd = clockOf(runtime.moment, context.now()).toISOString()
      const windowStart = new Date(Date.parse(windowEnd) - TRACK_DAYS * 86_400_000).toISOString()
      const environments = [
        ...new Set([...Object.keys(agent?.levels ?? {}), ...actions.map((a) => a.environment)]),
      ]
      const track = Object.fromEntries(
        environments.sort().map((environment) => {
          const days = authority.list(authorityKeys.trackPrefix(agentId, environment)).map(([, d]) => d)
          return [environment, trackRecord(trackDaysOf(days, agentId, environment), windowStart, windowEnd)]
        }),
      )
      const data = {
        agentId,
        owner: agent?.owner ?? null,
        levels: agent?.levels ?? {},
        pendingPromotions: agent?.pendingPromotions ?? [],
        refusedPromotions: agent?.refusedPromotions ?? 0,
        trackRecord: track,
        actions,
        asOf,
      }
      const levels = Object.entries(data.levels).sort(([a], [b]) => (a < b ? -1 : 1))
      const text = [
        `Agent ${agentId} (owner ${orDash(data.owner)}; as of ledger position ${asOf})`,
        '',
        levels.length === 0
          ? 'Authority: observe everywhere'
          : table(
              [{ header: 'ENVIRONMENT' }, { header: 'LEVEL' }, { header: 'SINCE' }, { header: 'HOW' }],
              levels.map(([environment, held]) => [environment, held.level, held.since, levelCause(held)]),
            ),
        '',
        data.pendingPromotions.length === 0
          ? 'Pending promotions: none'
          : `Pending promotions\n${table(
              [
                { header: 'REQUEST' },
                { header: 'ENVIRONMENT' },
                { header: 'FROM' },
                { header: 'TO' },
                { header: 'REQUESTED AT' },
              ],
              data.pendingPromotions.map((p) => [p.requestId, p.environment, p.from, p.to, p.requestedAt]),
            )}`,
        `Refused promotions: ${data.refusedPromotions}`,
        '',
        `Track record, last ${TRACK_DAYS} days`,
        environments.length === 0 ? '  none' : trackText(track),
        '',
        `Actions (${actions.length})`,
        actions.length === 0
          ? '  none'
          : table(
              [
                { header: 'PROPOSAL' },
                { header: 'SUBMITTED' },
                { header: 'TOOL.ACTION' },
                { header: 'RESOURCE' },
                { header: 'ENV' },
                { header: 'OUTCOME' },
                { header: 'RECOVERY', align: 'right' },
              ],
              actions.map((a) => [
                a.proposalId,
                a.submittedAt,
                `${a.tool}.${a.action}`,
                a.resource,
                a.environment,
                `${a.outcome}${a.violation ? ' (violation)' : ''}`,
                duration(a.timeToRecoverySeconds),
              ]),
            ),
      ].join('\n')
      return done(data, text)
    },
    moment,
  )
