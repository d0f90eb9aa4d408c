import { readFileSync } from 'node:fs'
import { projections } from '../../../projections/index.js'
import { ProjectionRunner } from '../../../projections/runner.js'
import { resolveRange } from '../../application/as-of.js'
import type { Config } from '../../config.js'
import { counterfactualReplay, publishedPolicy } from '../../decision/counterfactual.js'
import { type Decision, inRecordedForm, recordedDecisions, replayDecisions } from '../../decision/replay.js'
import { decisionWorld } from '../../decision/service.js'
import { canonicalizeRecorded } from '../../domain/canonical.js'
import { DomainError } from '../../domain/errors.js'
import { PolicyDraft } from '../../domain/events.js'
import { readKeyList, verdictJwks } from '../../keys/key-list.js'
import { dataPaths } from '../../runtime.js'
import { MemoryDocStore } from '../../store/memory/doc-store.js'
import type { EventStore } from '../../store/port.js'
import { openSqliteDocStore } from '../../store/sqlite/doc-store.js'
import type { Invocation } from '../args.js'
import { loadVerdictSigner, openReadOnlyLedger } from '../data-folder.js'
import { CliError } from '../errors.js'
import { countsLines, duration, table } from '../format.js'
import { type Context, done, type Outcome } from '../outcome.js'
import { ProgressLine, rate } from '../progress.js'

export interface StepReport {
  readonly name: string
  readonly events: number
  readonly seconds: number
  readonly eventsPerSecond: number
  readonly checkpoint: number
}

const seconds = (startMs: number): number => (Date.now() - startMs) / 1000

const stepLine = (step: StepReport, width: number): string =>
  `${step.name.padEnd(width)}  ${String(step.events).padStart(9)} events  ${duration(step.seconds).padStart(8)}  ${step.eventsPerSecond} events/s`

/** `replay`: wipes and rebuilds every projection from the ledger, the decision service's world among them. */
export const rebuild = async (config: Config, context: Context): Promise<Outcome> => {
  const ledger = openReadOnlyLedger(config)
  const docs = openSqliteDocStore(dataPaths(config).derived)
  const progress = new ProgressLine(context.stderr)
  try {
    const head = (await ledger.head()).position
    // the decision service's world is a projection of the ledger as every view is: its answers are all in it
    const states = [...projections, decisionWorld]
    const width = Math.max(...states.map((p) => p.name.length))
    const steps: StepReport[] = []
    for (const projection of states) {
      const started = Date.now()
      const checkpoint = await new ProjectionRunner(ledger, docs, projection).rebuild((p) =>
        progress.update(`${projection.name}: ${p.position}/${head} events`),
      )
      const took = seconds(started)
      const step = {
        name: projection.name,
        events: checkpoint,
        seconds: took,
        eventsPerSecond: rate(checkpoint, took),
        checkpoint,
      }
      steps.push(step)
      progress.finish(stepLine(step, width))
    }
    const text = [
      `Rebuilt from ${head} ledger events:`,
      table(
        [
          { header: 'STATE' },
          { header: 'EVENTS', align: 'right' },
          { header: 'TIME', align: 'right' },
          { header: 'EVENTS/S', align: 'right' },
          { header: 'CHECKPOINT', align: 'right' },
        ],
        steps.map((s) => [
          s.name,
          String(s.events),
          duration(s.seconds),
          String(s.eventsPerSecond),
          String(s.checkpoint),
        ]),
      ),
    ]
      .join('\n')
      .trimEnd()
    return done({ head, rebuilt: steps }, text)
  } finally {
    docs.close()
    await ledger.close()
  }
}

export interface Difference {
  /** the ledger event the answers respond to */
  readonly causationId: string | null
  readonly recorded: readonly Decision[]
  readonly replayed: readonly Decision[]
}

const byCause = (decisions: readonly Decision[]): Map<string | null, Decision[]> => {
  const groups = new Map<string | null, Decision[]>()
  for (const d of decisions) {
    const group = groups.get(d.causationId)
    if (group) group.push(d)
    else groups.set(d.causationId, [d])
  }
  return groups
}

/**
 * Compares answers cause by cause, in ledger order. Answers replayed for events after `decidedUpTo` that the
 * ledger does not hold yet are pending (the service has not got there), not differences.
 */
export const compareDecisions = (
  recorded: readonly Decision[],
  replayed: readonly Decision[],
  undecided: ReadonlySet<string>,
): { differences: Difference[]; pending: number; matched: number } => {
  const recordedBy = byCause(recorded)
  const replayedBy = byCause(replayed)
  const causes = [...new Set([...replayedBy.keys(), ...recordedBy.keys()])]
  const differences: Difference[] = []
  let pending = 0
  let matched = 0
  for (const cause of causes) {
    const was = recordedBy.get(cause) ?? []
    const again = replayedBy.get(cause) ?? []
    if (was.length === 0 && cause !== null && undecided.has(cause)) {
      pending += again.length
      continue
    }
    if (
      was.length === again.length &&
      was.every((d, i) => canonicalizeRecorded(d) === canonicalizeRecorded(again[i]))
    ) {
      matched += was.length
      continue
    }
    differences.push({ causationId: cause, recorded: was, replayed: again })
  }
  return { differences, pending, matched }
}

const describe = (decisions: readonly Decision[]): string =>
  decisions.length === 0
    ? 'nothing'
    : decisions
        .map((d) => {
          const data = d.data as { decision?: string; revision?: number }
          const detail = d.type === 'VerdictIssued' ? `(${data.decision}, revision ${data.revision})` : ''
          return `${d.type}${detail} on ${d.stream}`
        })
        .join(', ')

const SHOWN = 10
const KEPT = 100

/** The event ids the decision service had not reached: its answers to them may be missing, not different. */
const undecidedEvents = async (ledger: EventStore, decidedUpTo: number): Promise<Set<string>> => {
  const ids = new Set<string>()
  let after = decidedUpTo
  for (;;) {
    const page = await ledger.readAll(after, 1000)
    for (const e of page) ids.add(e.id)
    const last = page.at(-1)
    if (!last) return ids
    after = last.position
  }
}

/** `replay --check`: re-decides the whole ledger in memory and compares each answer with the recorded one. */
export const check = async (config: Config, context: Context): Promise<Outcome> => {
  const ledger = openReadOnlyLedger(config)
  const progress = new ProgressLine(context.stderr)
  try {
    const signer = loadVerdictSigner(config)
    const head = (await ledger.head()).position
    // every event is answered in the commit that appends it: every answer is in the ledger
    const decidedUpTo = head
    const started = Date.now()
    progress.update(`re-deciding ${head} events`)
    const recorded = await recordedDecisions(ledger)
    const replayed = await inRecordedForm(
      await replayDecisions(ledger, signer, new MemoryDocStore()),
      recorded,
      signer,
      verdictJwks(readKeyList(dataPaths(config).keyList)),
    )
    const took = seconds(started)
    progress.finish(`re-decided ${head} events in ${duration(took)} (${rate(head, took)} events/s)`)
    const { differences, pending, matched } = compareDecisions(
      recorded,
      replayed,
      await undecidedEvents(ledger, decidedUpTo),
    )
    const ok = differences.length === 0
    const data = {
      ok,
      events: head,
      decidedUpTo,
      recorded: recorded.length,
      replayed: replayed.length,
      identical: matched,
      pending,
      differenceCount: differences.length,
      differences: differences.slice(0, KEPT),
    }
    const lines = [
      `Re-decided ${head} events: ${matched} of ${recorded.length} recorded answers identical, ${differences.length} difference${differences.length === 1 ? '' : 's'}.`,
    ]
    if (pending > 0)
      lines.push(
        `${pending} answers are still to come: the service had decided up to position ${decidedUpTo}.`,
      )
    for (const d of differences.slice(0, SHOWN)) {
      lines.push(
        `  event ${d.causationId ?? '(none)'}: recorded ${describe(d.recorded)}; replayed ${describe(d.replayed)}`,
      )
    }
    if (differences.length > SHOWN)
      lines.push(`  ... and ${differences.length - SHOWN} more (--json lists ${KEPT})`)
    const text = lines.join('\n')
    return ok ? done(data, text) : { data, text, exitCode: 1 }
  } finally {
    await ledger.close()
  }
}

/** A policy draft file, validated as the policy admin's draft is. */
const readDraft = (file: string): PolicyDraft => {
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new CliError(`--policy ${file}: not a JSON file (${(error as Error).message})`)
  }
  const parsed = PolicyDraft.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new CliError(`--policy ${file}: not a policy draft (${issue?.path.join('.')}: ${issue?.message})`)
  }
  return parsed.data
}

/**
 * `replay --policy FILE | --policy-version N`: counterfactual replay, in memory on the read-only ledger. Lists
 * every flip and the summaries; exit 0 whatever it finds (a flip is an answer, not a failure).
 */
export const counterfactual = async (
  config: Config,
  options: NonNullable<Extract<Invocation, { command: 'replay' }>['counterfactual']>,
  context: Context,
): Promise<Outcome> => {
  const ledger = openReadOnlyLedger(config)
  const progress = new ProgressLine(context.stderr)
  try {
    const policy =
      'file' in options.policy
        ? readDraft(options.policy.file)
        : await publishedPolicy(ledger, options.policy.version)
    if (policy === null)
      throw new CliError(
        `the ledger publishes no policy version ${(options.policy as { version: number }).version}`,
      )
    const started = Date.now()
    progress.update(`re-deciding under policy v${policy.version}`)
    const range = await resolveRange(ledger, options).catch((error: unknown) => {
      throw error instanceof DomainError ? new CliError(`--from/--to: ${error.message}`) : error
    })
    const report = await counterfactualReplay(ledger, policy, range)
    const took = seconds(started)
    progress.finish(
      `re-decided ${report.events} events in ${duration(took)} (${rate(report.events, took)} events/s)`,
    )
    const ignored =
      report.ignoredPolicyVersions.length === 0
        ? ''
        : ` Ignored the policies published in the range: ${report.ignoredPolicyVersions.map((v) => `v${v}`).join(', ')}.`
    const lines = [
      `Policy v${policy.version} in force from position ${report.from} to ${report.to}: ${report.compared} proposals compared, ${report.allowToBlock} allow to block, ${report.blockToAllow} block to allow.${ignored}`,
    ]
    if (report.flips.length > 0) {
      lines.push(
        '',
        table(
          [
            { header: 'PROPOSAL' },
            { header: 'AGENT' },
            { header: 'TOOL.ACTION' },
            { header: 'ENVIRONMENT' },
            { header: 'IMPACT' },
            { header: 'RECORDED' },
            { header: 'COUNTERFACTUAL' },
            { header: 'CHECKS CHANGED' },
          ],
          report.flips.map((f) => [
            f.proposalId,
            f.agentId,
            `${f.tool}.${f.action}`,
            f.environment,
            f.impact,
            f.recorded,
            f.counterfactual,
            f.changedChecks
              .map((c) => `${c.check} ${c.recorded ?? '-'}>${c.counterfactual ?? '-'}`)
              .join(', '),
          ]),
        ),
        ...countsLines('AGENT', report.byAgent),
        ...countsLines('TOOL.ACTION', report.byTool),
        ...countsLines('ENVIRONMENT', report.byEnvironment),
        ...countsLines('CHECK CHANGED', report.byCheck),
      )
    }
    return done(report, lines.join('\n'))
  } finally {
    await ledger.close()
  }
}
