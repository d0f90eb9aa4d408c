// The SIGKILL drill: the real service on one embedded SQLite data folder, killed 20 times under concurrent load
// (proposals, evidence, executions from several principals) and started again each time. Afterwards nothing
// acknowledged is lost, nothing is decided or executed twice, the chain verifies, and the derived state equals
// a rebuild from zero.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { it } from 'node:test'
import { projections } from '../../projections/index.js'
import { ProjectionRunner } from '../../projections/runner.js'
import { compareDecisions } from '../../src/cli/commands/replay.js'
import { loadVerdictSigner, openReadOnlyLedger } from '../../src/cli/data-folder.js'
import { loadConfig } from '../../src/config.js'
import { everyEvent, recordedDecisions, replayDecisions } from '../../src/decision/replay.js'
import { DECISION_NAMESPACE, decisionWorld } from '../../src/decision/service.js'
import type { DataOf } from '../../src/domain/events.js'
import { dataPaths } from '../../src/runtime.js'
import {
  AgentClient,
  ApproverClient,
  type CommandOptions,
  type CommandResult,
  ExecutorClient,
  GovernanceApiError,
  ObserverClient,
  SimulatorClient,
} from '../../src/sdk/index.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import type { StoredEvent } from '../../src/store/port.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { verifyLedger } from '../../src/store/verify.js'
import {
  type Cast,
  governed,
  observation,
  passedRollbackTest,
  type RunningService,
  setUpWorld,
  startService,
  survivingSimulation,
} from '../support/service.js'

const ROUNDS = 20
/** agents proposing at once, each with its own executing identity, executor and resource */
const WORKERS = 4
/** the service runs this long under load before each kill: a spread, so kills land at every point of a commit */
const UP_MIN_MS = 250
const UP_SPREAD_MS = 1250
/** every fourth action fails and is rolled back, so the recovery path is under load too */
const FAILING_EVERY = 4
const ALLOW_TIMEOUT_MS = 20_000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A request the service answered with a 2xx: what it said it appended (or had appended, on a retry). */
interface Ack {
  readonly principal: string
  /** the Idempotency-Key sent with every attempt of the command */
  readonly key: string
  readonly what: string
  readonly duplicate: boolean
  readonly events: readonly { readonly id: string; readonly position: number; readonly type: string }[]
}

/** The load's bookkeeping: every acknowledgement, every refusal, every attempt the kills cut. */
class Load {
  readonly acks: Ack[] = []
  readonly refused = new Map<string, number>()
  readonly serverErrors: string[] = []
  /** commands that failed on a dead, restarting or closed service and were sent again with the same key */
  retried = 0
  /** commands still unanswered long after the last restart */
  givenUp = 0
  /** requests sent and not yet answered */
  inFlight = 0
  stopping = false
  /** the drill failed: every command gives up at once */
  aborted = false
  executed = 0
  rolledBack = 0
  noAllow = 0

  /**
   * Sends one command until it is answered: a cut connection, a 429 or a 502/503/504 is sent again with the
   * same Idempotency-Key (as any client must, not knowing whether it was done); a 4xx is a refusal.
   */
  async command<T extends CommandResult>(
    principal: string,
    what: string,
    call: (options: CommandOptions) => Promise<T>,
  ): Promise<T | null> {
    const key = randomUUID()
    let lateAttempts = 0
    for (;;) {
      let failure: unknown
      this.inFlight += 1
      try {
        const result = await call({ idempotencyKey: key })
        this.acks.push({
          principal,
          key,
          what,
          duplicate: result.duplicate,
          events: result.events.map(({ id, position, type }) => ({ id, position, type })),
        })
        return result
      } catch (error) {
        failure = error
      } finally {
        this.inFlight -= 1
      }
      if (failure instanceof GovernanceApiError && !failure.retryable) {
        if (failure.status >= 500) this.serverErrors.push(`${what}: ${failure.status} ${failure.message}`)
        else this.count(`${what} ${failure.status} ${failure.code}`)
        return null
      }
      if (this.aborted) return null
      this.retried += 1
      if (failure instanceof GovernanceApiError) this.answeredLater(failure.status)
      // the service is up again once the drill stops: a command still unanswered by then is given up
      if (this.stopping && ++lateAttempts > 100) {
        this.givenUp += 1
        return null
      }
      await sleep(40 + Math.random() * 80)
    }
  }

  /** A read that may land on a dead service: retried until it answers. */
  async read<T>(call: () => Promise<T>): Promise<T | null> {
    for (;;) {
      try {
        return await call()
      } catch (error) {
        if (error instanceof GovernanceApiError && !error.retryable) {
          if (error.status >= 500) this.serverErrors.push(`read: ${error.status} ${error.message}`)
          return null
        }
        if (error instanceof GovernanceApiError) this.answeredLater(error.status)
        if (this.stopping) return null
        await sleep(40 + Math.random() * 80)
      }
    }
  }

  /** 429 and 502/503/504 answers (a closed gate answers 503), by status: the service asked to be asked again */
  readonly later = new Map<number, number>()

  answeredLater(status: number): void {
    this.later.set(status, (this.later.get(status) ?? 0) + 1)
  }

  count(what: string): void {
    this.refused.set(what, (this.refused.get(what) ?? 0) + 1)
  }
}

/** One worker's principals, as clients that never retry on their own: the load does, with the same key. */
const clientsFor = async (svc: RunningService, cast: Cast, index: number) => {
  const options = async (sub: string, ...roles: Parameters<RunningService['tokenFor']>[1][]) => ({
    baseUrl: svc.url,
    token: await svc.tokenFor(sub, ...roles),
    retries: 0,
    timeoutMs: 10_000,
  })
  const agentId = cast.agent.agentId
  const executorId = `${cast.identity}-runner`
  return {
    index,
    cast,
    resource: `deployment/drill-${index}`,
    agentId,
    executorId,
    agent: new AgentClient({ ...(await options(agentId, 'agent')), agentId }),
    observer: new ObserverClient(await options('observer-1', 'observer')),
    simulator: new SimulatorClient(await options('simulator-1', 'simulator')),
    approver: new ApproverClient(await options('approver-1', 'approver')),
    executor: new ExecutorClient(await options(executorId, 'executor')),
  }
}
type Worker = Awaited<ReturnType<typeof clientsFor>>

/**
 * One action from observation to execution, every body built once so that a retry sends the same request.
 * Stops between steps once the drill stops; an action refused or never allowed is left as it stands.
 */
const lifecycle = async (load: Load, w: Worker, n: number): Promise<void> => {
  const id = `drill-${w.index}-${n}`
  const { environment, tool, identity } = w.cast
  const version = `v-${id}`
  const seen = observation(environment, w.resource, version)
  if (!(await load.command('observer-1', 'observe', (o) => w.observer.observe(seen, o)))) return
  if (load.stopping) return
  const proposal = {
    proposalId: `p-${id}`,
    executingIdentity: identity,
    tool,
    action: 'scale',
    resource: w.resource,
    environment,
    plan: { replicas: (n % 7) + 1, round: n },
    expectedImpact: 'high' as const,
    snapshot: { version },
  }
  const submitted = await load.command(w.agentId, 'submit', (o) => w.agent.submitProposal(proposal, o))
  if (!submitted || load.stopping) return
  const { proposalId, actionDigest } = submitted
  const asked = { actionDigest, requestId: `s-${id}` }
  if (
    !(await load.command(w.agentId, 'simulation request', (o) =>
      w.agent.requestSimulation(proposalId, asked, o),
    ))
  )
    return
  const simulation = survivingSimulation(actionDigest, asked.requestId)
  const rollbackTest = passedRollbackTest(actionDigest, tool)
  const evidence = [
    () =>
      load.command('simulator-1', 'simulation', (o) =>
        w.simulator.recordSimulation(proposalId, simulation, o),
      ),
    () =>
      load.command('simulator-1', 'rollback test', (o) =>
        w.simulator.recordRollbackTest(proposalId, rollbackTest, o),
      ),
    () => load.command('approver-1', 'approval', (o) => w.approver.approve(proposalId, { actionDigest }, o)),
  ]
  for (const attest of evidence) {
    if (load.stopping || !(await attest())) return
  }
  const deadline = Date.now() + ALLOW_TIMEOUT_MS
  let verdictId: string | null = null
  while (verdictId === null && !load.stopping && Date.now() < deadline) {
    const verdict = await load.read(() => w.agent.currentVerdict(proposalId))
    if (verdict?.decision === 'allow') verdictId = verdict.verdictId
    else await sleep(30)
  }
  if (verdictId === null) {
    if (!load.stopping) load.noAllow += 1
    return
  }
  const start = { verdictId, actionDigest, executionId: `x-${id}` }
  const started = await load.command(w.executorId, 'execution start', (o) =>
    w.executor.reportStart(proposalId, start, o),
  )
  if (!started || load.stopping) return
  const { executionId } = started
  if (n % FAILING_EVERY !== FAILING_EVERY - 1) {
    const success = { resourceVersionAfter: `${version}-after` }
    const ok = await load.command(w.executorId, 'execution success', (o) =>
      w.executor.reportSuccess(proposalId, executionId, success, o),
    )
    if (ok) load.executed += 1
    return
  }
  const failure = { error: 'the rollout stalled', resourceVersionAfter: null }
  if (
    !(await load.command(w.executorId, 'execution failure', (o) =>
      w.executor.reportFailure(proposalId, executionId, failure, o),
    ))
  )
    return
  const rollback = { executionId, rollbackId: `r-${id}` }
  const begun = await load.command(w.executorId, 'rollback start', (o) =>
    w.executor.startRollback(proposalId, rollback, o),
  )
  if (!begun || load.stopping) return
  const completion = { resourceVersionAfter: version }
  const done = await load.command(w.executorId, 'rollback completion', (o) =>
    w.executor.completeRollback(proposalId, begun.rollbackId, completion, o),
  )
  if (done) load.rolledBack += 1
}

const work = async (load: Load, w: Worker): Promise<void> => {
  for (let n = 0; !load.stopping; n += 1) await lifecycle(load, w, n)
}

/** Waits until the decision service and every read model have reached a head that no longer moves. */
const settled = async (svc: RunningService): Promise<number> => {
  const deadline = Date.now() + 30_000
  let last = -1
  for (;;) {
    const response = await fetch(`${svc.url}/v1/ledger/head`, {
      headers: { authorization: `Bearer ${svc.bootstrapToken}` },
    })
    const text = await response.text()
    assert.equal(response.status, 200, text)
    const head = JSON.parse(text) as {
      position: number
      decision: { lag: number }
      views: Record<string, { lag: number }>
    }
    const caughtUp = head.decision.lag === 0 && Object.values(head.views).every((v) => v.lag === 0)
    if (caughtUp && head.position === last) return head.position
    last = caughtUp ? head.position : -1
    if (Date.now() > deadline) throw new Error(`not settled after 30 s: ${JSON.stringify(head)}`)
    await sleep(200)
  }
}

/**
 * Double answers, from the events alone: a revision issued twice for one proposal, one event answered twice
 * with a verdict on one proposal, an Idempotency-Key whose events are not one append (one contiguous run), a
 * proposal submitted or started twice.
 */
const doublesIn = (events: readonly StoredEvent[]): string[] => {
  const doubles: string[] = []
  const once = (seen: Set<string>, key: string, what: string) => {
    if (seen.has(key)) doubles.push(what)
    seen.add(key)
  }
  const revisions = new Set<string>()
  const answers = new Set<string>()
  const submissions = new Set<string>()
  const starts = new Set<string>()
  const runs = new Map<string, number>()
  for (const e of events) {
    const key = e.metadata.idempotencyKey
    if (key !== null) {
      const lastOfRun = runs.get(key)
      if (lastOfRun !== undefined && lastOfRun !== e.position - 1)
        doubles.push(`key ${key} appended again at position ${e.position}`)
      runs.set(key, e.position)
    }
    switch (e.type) {
      case 'VerdictIssued': {
        const v = e.data as DataOf<'VerdictIssued'>
        once(
          revisions,
          `${v.proposalId}|${v.revision}`,
          `revision ${v.revision} of ${v.proposalId} issued twice`,
        )
        once(
          answers,
          `${v.proposalId}|${v.basedOnEventId}`,
          `event ${v.basedOnEventId} answered twice on ${v.proposalId}`,
        )
        break
      }
      case 'ProposalSubmitted': {
        const { proposalId } = e.data as DataOf<'ProposalSubmitted'>
        once(submissions, proposalId, `${proposalId} submitted twice`)
        break
      }
      case 'ExecutionStarted': {
        const { proposalId } = e.data as DataOf<'ExecutionStarted'>
        once(starts, proposalId, `${proposalId} started twice`)
        break
      }
    }
  }
  return doubles
}

it(`${ROUNDS} SIGKILLs under concurrent load: 0 acknowledged requests lost, 0 double verdicts, the chain verifies, derived state equals a rebuild`, {
  timeout: 480_000,
}, async () => {
  const began = Date.now()
  const svc = await startService()
  const load = new Load()
  try {
    const casts: Cast[] = []
    for (let i = 0; i < WORKERS; i += 1) {
      casts.push(
        await setUpWorld(svc, { agentId: `drill-agent-${i}`, identity: `drill-bot-${i}`, policy: i === 0 }),
      )
    }
    const workers = await Promise.all(casts.map((cast, i) => clientsFor(svc, cast, i)))
    for (const w of workers) {
      const { admin, secondAdmin, identity, tool, environment } = w.cast
      await governed(
        secondAdmin,
        admin.grant({ identity, tool, action: 'scale', resourcePattern: w.resource, environment }),
      )
    }

    const setUpSeconds = (Date.now() - began) / 1000
    const running = workers.map((w) => work(load, w))
    const inFlightAtKill: number[] = []
    const acksPerRound: number[] = []
    const restartMs: number[] = []
    for (let round = 1; round <= ROUNDS; round += 1) {
      const before = load.acks.length
      await sleep(UP_MIN_MS + Math.random() * UP_SPREAD_MS)
      inFlightAtKill.push(load.inFlight)
      await svc.kill()
      acksPerRound.push(load.acks.length - before)
      const down = Date.now()
      await svc.restart()
      restartMs.push(Date.now() - down)
    }
    load.stopping = true
    await Promise.all(running)
    const head = await settled(svc)
    await svc.stop()
    const loadSeconds = (Date.now() - began) / 1000 - setUpSeconds

    // ---- the checks, offline on the data folder, as an auditor would run them ----
    const config = loadConfig(svc.env)
    const ledger = openReadOnlyLedger(config)
    const live = openSqliteDocStore(dataPaths(config).derived)
    const rebuilt = openSqliteDocStore(join(svc.dataDir, 'rebuilt-from-zero.db'))
    try {
      const events: StoredEvent[] = []
      for await (const e of everyEvent(ledger)) events.push(e)
      assert.equal(events.length, head, 'the ledger holds what the service reported as its head')

      const at = new Map(events.map((e) => [e.position, e]))
      const lost: string[] = []
      for (const ack of load.acks) {
        for (const summary of ack.events) {
          const stored = at.get(summary.position)
          const same =
            stored?.id === summary.id &&
            stored.type === summary.type &&
            stored.metadata.actor === ack.principal &&
            stored.metadata.idempotencyKey?.endsWith(`:${ack.key}`) === true
          if (!same)
            lost.push(`${ack.what} by ${ack.principal}: ${summary.type} ${summary.id} at ${summary.position}`)
        }
      }
      const ackedEvents = load.acks.reduce((n, a) => n + a.events.length, 0)

      const doubles = doublesIn(events)
      const signer = loadVerdictSigner(config)
      const recorded = await recordedDecisions(ledger)
      const replayed = await replayDecisions(ledger, signer, new MemoryDocStore())
      const { differences, matched } = compareDecisions(recorded, replayed, new Set())

      const chain = await verifyLedger(ledger)

      const mismatched: string[] = []
      // the decision world is a projection of the ledger as every read model is
      for (const p of [...projections, decisionWorld]) {
        const checkpoint = await new ProjectionRunner(ledger, rebuilt, p).rebuild()
        assert.equal(checkpoint, head, `${p.name} rebuilt up to the head`)
        assert.equal(live.checkpoint(p.name), head, `${p.name} in derived.db is at the head`)
      }
      for (const name of [DECISION_NAMESPACE, ...projections.map((p) => p.name)]) {
        const was = new Map(live.dump(name))
        const again = new Map(rebuilt.dump(name))
        for (const key of new Set([...was.keys(), ...again.keys()])) {
          if (was.get(key) !== again.get(key)) mismatched.push(`${name}/${key}`)
        }
      }
      const documents = [DECISION_NAMESPACE, ...projections.map((p) => p.name)].reduce(
        (n, name) => n + live.dump(name).length,
        0,
      )

      const refusals = [...load.refused].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'
      console.log(
        [
          `sigkill drill: ${ROUNDS} rounds, ${inFlightAtKill.length} kills (requests in flight at each kill: ${inFlightAtKill.join(' ')})`,
          `  acknowledged: ${load.acks.length} requests (${load.acks.filter((a) => a.duplicate).length} answered as retries), ${ackedEvents} events; per round: ${acksPerRound.join(' ')}`,
          `  attempts cut by a kill and sent again: ${load.retried}; given up: ${load.givenUp}; refused: ${refusals}; 5xx: ${load.serverErrors.length}`,
          `  answers to ask again later (a closed gate answers 503): ${[...load.later].map(([status, n]) => `${status}: ${n}`).join(', ') || 'none'}`,
          `  actions executed ${load.executed}, failed and rolled back ${load.rolledBack}, never allowed ${load.noAllow}`,
          `  ledger: ${events.length} events, chain ${chain.ok ? 'verifies' : 'BROKEN'} (${chain.checked} checked)`,
          `  lost: ${lost.length}; doubles: ${doubles.length}; decisions identical on replay: ${matched} of ${recorded.length}, ${differences.length} differing`,
          `  derived state: ${documents} documents, ${mismatched.length} differing from a rebuild from zero`,
          `  time: ${setUpSeconds.toFixed(1)} s to set up, ${loadSeconds.toFixed(1)} s under load and kills (restarts ${restartMs.join(' ')} ms), ${((Date.now() - began) / 1000).toFixed(1)} s in all`,
        ].join('\n'),
      )

      assert.ok(
        acksPerRound.filter((n) => n > 0).length >= ROUNDS / 2,
        'at least half the kills hit a service that was answering the load',
      )
      assert.ok(
        inFlightAtKill.some((n) => n > 0),
        'some kills cut requests in flight',
      )
      assert.ok(load.executed + load.rolledBack > 0, 'some actions went all the way through the gate')
      assert.deepEqual(load.serverErrors, [], 'no request answered 5xx')
      assert.deepEqual(lost, [], 'every acknowledged event is in the ledger where it was acknowledged')
      assert.deepEqual(doubles, [], 'nothing decided, submitted or started twice')
      assert.deepEqual(differences, [], 'every recorded decision is exactly what a replay decides')
      // every start checked the stretch before the head for unanswered events: a kill never leaves one
      assert.deepEqual(
        events.filter((e) => e.type === 'DecisionResumed').map((e) => e.position),
        [],
        'no start found an event without its answers',
      )
      assert.equal(chain.ok, true, JSON.stringify(chain.firstFault))
      assert.equal(chain.checked, events.length)
      assert.deepEqual(mismatched, [], 'the derived state equals a rebuild from zero')
    } finally {
      rebuilt.close()
      live.close()
      await ledger.close()
    }
  } finally {
    // a drill that failed midway leaves no worker retrying against a service that is gone
    load.aborted = true
    load.stopping = true
    await svc.close()
  }
})
