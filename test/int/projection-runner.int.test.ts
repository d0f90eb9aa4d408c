import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { auditKeys } from '../../projections/audit.js'
import { projections as all, audit } from '../../projections/index.js'
import type { OpenActionDoc } from '../../projections/open-actions.js'
import { openActions } from '../../projections/open-actions.js'
import type { Projection } from '../../projections/projection.js'
import {
  catchUpAll,
  followAll,
  META_KEY,
  type Progress,
  ProjectionError,
  ProjectionRunner,
  runAll,
  SNAPSHOT_EVERY,
} from '../../projections/runner.js'
import { type LedgerEvent, toLedgerEvent } from '../../src/domain/events.js'
import type { DocStore } from '../../src/store/docs.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import {
  actionDigestFor,
  bindingData,
  EXECUTING_IDENTITY,
  LedgerBuilder,
  policyData,
  proposalData,
  streamOf,
  toNewEvent,
  verdictData,
  verdictIdOf,
} from '../support/ledger-events.js'

/** every projection, seen through the common interface */
const projections: readonly Projection[] = all

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'projection-runner-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))
let files = 0
const freshPath = (name: string) => path.join(dir, `${name}-${++files}.db`)

/**
 * Proposals that end in every way an action can: succeeded, failed and recovered, revoked, still failing
 * after a start the gate refused and one that raced a new verdict (a violation).
 */
const history = (from: number, count: number, start: string): LedgerEvent[] => {
  const l = new LedgerBuilder(start)
  const events: LedgerEvent[] = []
  if (from === 0) {
    events.push(l.event('PolicyPublished', policyData(1, 'risk-office'), { actor: 'admin-1' }))
    events.push(
      l.event('AgentRegistered', { agentId: 'agent-1', owner: 'platform-team' }, { actor: 'admin-1' }),
    )
    events.push(l.event('IdentityBound', bindingData('agent-1')))
    events.push(l.event('IdentityBound', bindingData('x-1', EXECUTING_IDENTITY, 'executor')))
  }
  for (let n = from; n < from + count; n++) {
    const p = {
      proposalId: `p-${n}`,
      agentId: 'agent-1',
      resource: `deployment/svc-${n % 4}`,
      expectedImpact: 'high' as const,
    }
    const verdict = (
      revision: number,
      decision: 'allow' | 'block',
      failed: ('freshState' | 'lineage')[] = [],
    ) =>
      l.event(
        'VerdictIssued',
        verdictData(p, { revision, decision, failed, decidedAt: '2024-05-01T10:00:00.000Z' }),
      )
    const execution = { proposalId: p.proposalId, executionId: `e-${n}` }
    const actionDigest = actionDigestFor(p)
    l.after(1800)
    events.push(l.event('ProposalSubmitted', proposalData(p)))
    events.push(verdict(1, 'block', ['freshState', 'lineage']))
    events.push(
      l.event('SimulationRecorded', {
        proposalId: p.proposalId,
        simulationId: `s-${n}`,
        requestId: `sr-${n}`,
        actionDigest,
        simulatedBy: 'simulator-1',
        branches: [
          {
            name: 'db-down',
            kind: 'dependency-down',
            counterfactual: 'the database is down',
            outcome: 'survived',
          },
          {
            name: 'stale',
            kind: 'stale-read',
            counterfactual: 'a stale read',
            outcome: n % 3 ? 'survived' : 'failed',
          },
        ],
      }),
    )
    events.push(
      l.event('ApprovalGranted', {
        proposalId: p.proposalId,
        actionDigest,
        approver: 'approver-1',
        role: 'sre',
      }),
    )
    events.push(verdict(2, 'allow'))
    switch (n % 4) {
      case 0:
        events.push(
          l.event('ExecutionStarted', {
            ...execution,
            verdictId: verdictIdOf(p.proposalId, 2),
            actionDigest,
            executor: 'x-1',
          }),
        )
        events.push(l.after(20).event('ExecutionSucceeded', { ...execution, resourceVersionAfter: 'v2' }))
        break
      case 1:
        events.push(
          l.event('ExecutionStarted', {
            ...execution,
            verdictId: verdictIdOf(p.proposalId, 2),
            actionDigest,
            executor: 'x-1',
          }),
        )
        events.push(
          l.after(20).event('ExecutionFailed', { ...execution, error: 'crash', resourceVersionAfter: 'v2' }),
        )
        events.push(
          l.after(5).event('RollbackStarted', {
            proposalId: p.proposalId,
            rollbackId: `r-${n}`,
            executionId: execution.executionId,
          }),
        )
        events.push(
          l.after(5 * n).event('RollbackCompleted', {
            proposalId: p.proposalId,
            rollbackId: `r-${n}`,
            resourceVersionAfter: 'v1',
          }),
        )
        break
      case 2: {
        const ref = { scope: 'agent', target: 'agent-1' } as const
        events.push(l.event('KillSwitchEngaged', { ...ref, reason: 'drill' }, { actor: 'admin-2' }))
        events.push(
          l.event('VerdictRevoked', {
            verdictId: verdictIdOf(p.proposalId, 2),
            proposalId: p.proposalId,
            reason: 'drill',
            killSwitch: ref,
          }),
        )
        // a release takes a second admin
        const requestId = `release-${n}`
        events.push(
          l.after(30).event('ChangeRequested', {
            requestId,
            change: { kind: 'release-kill-switch', ...ref, reason: 'drill over' },
            policy: null,
            widens: 'releasing a kill switch lets what it stopped run again',
            requestedBy: 'admin-1',
            basedOn: { stream: `killswitch-${ref.scope}.${ref.target}`, version: 1 },
          }),
        )
        events.push(l.after(30).event('ChangeApproved', { requestId, approvedBy: 'admin-2' }))
        events.push(l.event('KillSwitchReleased', { ...ref, reason: 'drill over' }, { actor: 'admin-2' }))
        break
      }
      default:
        // an executor not bound to the identity is refused at the gate: nothing runs
        events.push(
          l.event('ExecutionRefused', {
            ...execution,
            executionId: `e-${n}-refused`,
            verdictId: verdictIdOf(p.proposalId, 2),
            actionDigest,
            executor: 'x-2',
            reasons: [{ specification: 'executorRunsAsIdentity', reason: 'x-2 is not bound' }],
          }),
        )
        // the bound one starts on the allow just as a new observation has the decision service supersede it
        events.push(verdict(3, 'block', ['freshState']))
        events.push(
          l.event('ExecutionStarted', {
            ...execution,
            verdictId: verdictIdOf(p.proposalId, 2),
            actionDigest,
            executor: 'x-1',
          }),
        )
        events.push(
          l.event('ViolationRecorded', {
            ...execution,
            agentId: 'agent-1',
            responsible: 'x-1',
            verdictId: verdictIdOf(p.proposalId, 2),
            kind: 'superseded',
            reason: `verdict ${verdictIdOf(p.proposalId, 2)} was superseded by ${verdictIdOf(p.proposalId, 3)}`,
          }),
        )
        events.push(
          l.after(20).event('ExecutionFailed', { ...execution, error: 'crash', resourceVersionAfter: null }),
        )
    }
  }
  return events
}

/** A ledger on a real SQLite file, stamping each event with the time the history gives it. */
const openLedger = (file = freshPath('ledger')) => {
  let now = new Date(0)
  const store = openSqliteEventStore({ path: file, clock: () => now })
  return {
    store,
    file,
    async append(events: readonly LedgerEvent[]): Promise<void> {
      for (const event of events) {
        now = new Date(event.recordedAt)
        await store.append(streamOf(event), [toNewEvent(event)], 'any')
      }
    },
  }
}

const dumps = (docs: DocStore) => Object.fromEntries(projections.map((p) => [p.name, docs.dump(p.name)]))

describe('ProjectionRunner on SQLite', () => {
  it('catches up in batches, committing each batch with its checkpoint', async () => {
    const ledger = openLedger()
    await ledger.append(history(0, 8, '2024-05-01T00:00:00.000Z'))
    const head = (await ledger.store.head()).position
    const docs = openSqliteDocStore(freshPath('docs'))
    const progress: Progress[] = []
    const runner = new ProjectionRunner(ledger.store, docs, openActions, { batchSize: 7 })
    assert.equal(await runner.catchUp((p) => progress.push(p)), head)
    assert.equal(runner.checkpoint(), head)
    assert.deepEqual(
      progress.map((p) => p.position),
      Array.from({ length: Math.ceil(head / 7) }, (_, i) => Math.min(head, (i + 1) * 7)),
    )
    assert.equal(progress.at(-1)?.applied, head)
    // p-1 and p-5 recovered, p-0 and p-4 succeeded: still open are the revoked and the failing ones
    assert.deepEqual(
      runner.list('open:').map(([key, doc]) => [key, doc.state]),
      [
        ['open:p-2', 'blocked'],
        ['open:p-3', 'failed'],
        ['open:p-6', 'blocked'],
        ['open:p-7', 'failed'],
      ],
    )
    assert.equal((runner.get('open:p-3') as OpenActionDoc).agentId, 'agent-1')
    assert.equal(await runner.catchUp(), head, 'nothing new: nothing applied')
    docs.close()
    await ledger.store.close()
  })

  it('commits a batch larger than one read of the ledger once, with its checkpoint', async () => {
    const ledger = openLedger()
    // several reads' worth of events
    await ledger.append(history(0, 100, '2024-05-01T00:00:00.000Z'))
    const head = (await ledger.store.head()).position
    const docs = openSqliteDocStore(freshPath('docs'))
    const commits: string[] = []
    const counting: DocStore = Object.create(docs, {
      commit: {
        value: (
          namespace: string,
          changes: ReadonlyMap<string, unknown>,
          checkpoint: number,
          expected?: number,
        ) => {
          if (checkpoint > 0) commits.push(namespace)
          docs.commit(namespace, changes, checkpoint, expected)
        },
      },
    })
    const progress: Progress[] = []
    const alone = new ProjectionRunner(ledger.store, counting, openActions, { batchSize: 10_000 })
    assert.equal(await alone.catchUp((p) => progress.push(p)), head)
    assert.deepEqual(commits, [openActions.name])
    assert.deepEqual(
      progress.map((p) => [p.position, p.applied]),
      [[head, head]],
    )
    const others = projections
      .filter((p) => p !== openActions)
      .map((p) => new ProjectionRunner(ledger.store, counting, p))
    await catchUpAll(ledger.store, others, undefined, 10_000)
    assert.deepEqual(commits, [openActions.name, ...others.map((r) => r.name)])

    const stepByStep = openSqliteDocStore(freshPath('docs'))
    for (const p of projections)
      await new ProjectionRunner(ledger.store, stepByStep, p, { batchSize: 7 }).catchUp()
    assert.deepEqual(dumps(docs), dumps(stepByStep))
    docs.close()
    stepByStep.close()
    await ledger.store.close()
  })

  it('keeps its checkpoint across a reopen and applies only what is new', async () => {
    const ledgerFile = freshPath('ledger')
    const docsFile = freshPath('docs')
    const first = openLedger(ledgerFile)
    await first.append(history(0, 4, '2024-05-01T00:00:00.000Z'))
    const firstDocs = openSqliteDocStore(docsFile)
    const firstRunners = await runAll(first.store, firstDocs, projections)
    const checkpoint = (await first.store.head()).position
    for (const runner of firstRunners) assert.equal(runner.checkpoint(), checkpoint)
    firstDocs.close()
    await first.store.close()

    const second = openLedger(ledgerFile)
    await second.append(history(4, 2, '2024-05-03T00:00:00.000Z'))
    const docs = openSqliteDocStore(docsFile)
    const runners = projections.map((p) => new ProjectionRunner(second.store, docs, p))
    for (const runner of runners) assert.equal(runner.checkpoint(), checkpoint)
    const progress: Progress[] = []
    for (const runner of runners) await runner.catchUp((p) => progress.push(p))
    const head = (await second.store.head()).position
    assert.deepEqual(
      progress.map((p) => [p.projection, p.applied]),
      projections.map((p) => [p.name, head - checkpoint]),
    )
    const entries = new ProjectionRunner(second.store, docs, audit).list(auditKeys.agentEntries('agent-1'))
    assert.deepEqual(
      entries.map(([, doc]) => doc.kind === 'entry' && doc.proposalId),
      ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5'],
    )
    docs.close()
    await second.store.close()
  })

  it('rebuilds from zero to exactly the documents it built incrementally', async () => {
    const ledger = openLedger()
    const docs = openSqliteDocStore(freshPath('docs'))
    const runners = projections.map((p) => new ProjectionRunner(ledger.store, docs, p, { batchSize: 5 }))
    for (let part = 0; part < 4; part++) {
      await ledger.append(history(part * 3, 3, `2024-05-0${part + 1}T00:00:00.000Z`))
      for (const runner of runners) await runner.catchUp()
    }
    const incremental = dumps(docs)
    const rebuiltDocs = openSqliteDocStore(freshPath('docs'))
    for (const p of projections)
      await new ProjectionRunner(ledger.store, rebuiltDocs, p, { batchSize: 1000 }).rebuild()
    assert.deepEqual(dumps(rebuiltDocs), incremental)
    for (const runner of runners) await runner.rebuild()
    assert.deepEqual(dumps(docs), incremental, 'a rebuild in place ends where it started')
    for (const p of projections) assert.ok(incremental[p.name]?.some(([key]) => key !== META_KEY))
    docs.close()
    rebuiltDocs.close()
    await ledger.store.close()
  })

  it('catches several runners up from one read to the same documents, each from its own checkpoint', async () => {
    const ledger = openLedger()
    await ledger.append(history(0, 6, '2024-05-01T00:00:00.000Z'))
    const separate = openSqliteDocStore(freshPath('docs'))
    for (const p of projections) await new ProjectionRunner(ledger.store, separate, p).catchUp()
    const together = openSqliteDocStore(freshPath('docs'))
    // one runner ahead of the others: the shared read must not apply anything to it twice
    const runners = projections.map((p) => new ProjectionRunner(ledger.store, together, p, { batchSize: 4 }))
    await runners[0]?.catchUp()
    const progress: Progress[] = []
    await catchUpAll(ledger.store, runners, (p) => progress.push(p), 4)
    assert.deepEqual(dumps(together), dumps(separate))
    const head = (await ledger.store.head()).position
    for (const runner of runners) assert.equal(runner.checkpoint(), head)
    assert.ok(progress.some((p) => p.projection === projections[1]?.name && p.position === head))
    separate.close()
    together.close()
    await ledger.store.close()
  })

  it('a batch another process committed first, mid-batch, is read again, never applied twice', async () => {
    const ledger = openLedger()
    await ledger.append(history(0, 6, '2024-05-01T00:00:00.000Z'))
    const events = (await ledger.store.readAll(0)).map((e) => toLedgerEvent(e))
    const shared = openSqliteDocStore(freshPath('docs'))
    const alone = openSqliteDocStore(freshPath('docs'))
    for (const p of projections) {
      const other = new ProjectionRunner(ledger.store, shared, p)
      let raced = false
      // the other process commits the whole ledger while this runner is in the middle of its batch
      const racing: DocStore = Object.create(shared, {
        get: {
          value: (namespace: string, key: string) => {
            if (!raced && namespace === p.name && key !== META_KEY) {
              raced = true
              other.applyParsed(events)
            }
            return shared.get(namespace, key)
          },
        },
      })
      await new ProjectionRunner(ledger.store, racing, p).catchUp()
      assert.ok(raced, `${p.name}: the race happened`)
      await new ProjectionRunner(ledger.store, alone, p).catchUp()
    }
    assert.deepEqual(dumps(shared), dumps(alone))
    shared.close()
    alone.close()
    await ledger.store.close()
  })

  it('reads what another process committed since its own last batch, not the copies it holds in memory', async () => {
    const ledger = openLedger()
    const docsFile = freshPath('docs')
    const mine = openSqliteDocStore(docsFile)
    // the other process (a command-line catch-up) has its own connection to the same file
    const theirs = openSqliteDocStore(docsFile)
    const runners = projections.map((p) => new ProjectionRunner(ledger.store, mine, p))
    await ledger.append(history(0, 3, '2024-05-01T00:00:00.000Z'))
    await catchUpAll(ledger.store, runners)
    // every part touches the documents of agent-1 and of the same resources again
    await ledger.append(history(3, 3, '2024-05-02T00:00:00.000Z'))
    for (const p of projections) await new ProjectionRunner(ledger.store, theirs, p).catchUp()
    await ledger.append(history(6, 3, '2024-05-03T00:00:00.000Z'))
    await catchUpAll(ledger.store, runners)
    await ledger.append(history(9, 3, '2024-05-04T00:00:00.000Z'))
    for (const p of projections) await new ProjectionRunner(ledger.store, theirs, p).catchUp()
    await ledger.append(history(12, 3, '2024-05-05T00:00:00.000Z'))
    const subscription = followAll(ledger.store, runners)
    const head = (await ledger.store.head()).position
    for (let tries = 0; runners.some((r) => r.checkpoint() < head) && tries < 100; tries++)
      await new Promise((r) => setTimeout(r, 20))
    await subscription.close()

    const alone = openSqliteDocStore(freshPath('docs'))
    for (const p of projections) await new ProjectionRunner(ledger.store, alone, p).catchUp()
    for (const runner of runners) assert.equal(runner.checkpoint(), head)
    assert.deepEqual(dumps(mine), dumps(alone))
    mine.close()
    theirs.close()
    alone.close()
    await ledger.store.close()
  })

  it('rebuilds from zero when the projection version changes', async () => {
    const ledger = openLedger()
    await ledger.append(history(0, 4, '2024-05-01T00:00:00.000Z'))
    const docs = openSqliteDocStore(freshPath('docs'))
    await new ProjectionRunner(ledger.store, docs, openActions).catchUp()
    const before = docs.dump(openActions.name)
    // a document the old version wrote that the new one never would
    docs.commit(
      openActions.name,
      new Map([['open:stale', { state: 'allowed' }]]),
      docs.checkpoint(openActions.name),
    )

    const next: Projection<OpenActionDoc> = { ...openActions, version: openActions.version + 1 }
    const evolved: number[] = []
    const counting: Projection<OpenActionDoc> = {
      ...next,
      evolve: (read, event) => {
        evolved.push(event.position)
        return next.evolve(read, event)
      },
    }
    const runner = new ProjectionRunner(ledger.store, docs, counting)
    await runner.catchUp()
    const head = (await ledger.store.head()).position
    assert.deepEqual(
      evolved,
      Array.from({ length: head }, (_, i) => i + 1),
      'every event applied again',
    )
    assert.equal(runner.get('open:stale'), undefined)
    assert.deepEqual(docs.get(openActions.name, META_KEY), {
      version: next.version,
      snapshotEvery: SNAPSHOT_EVERY,
    })
    const withoutMeta = (dump: Array<[string, string]>) => dump.filter(([key]) => key !== META_KEY)
    assert.deepEqual(withoutMeta(docs.dump(openActions.name)), withoutMeta(before))
    docs.close()
    await ledger.store.close()
  })

  it('stops at an event it cannot parse, naming its position, with the batch before it committed', async () => {
    const ledger = openLedger()
    await ledger.append(history(0, 1, '2024-05-01T00:00:00.000Z'))
    const good = (await ledger.store.head()).position
    await ledger.store.append(
      'proposal-p-x',
      [{ type: 'ProposalSubmitted', data: { proposalId: 'p-x' }, metadata: { actor: 'agent-1' } }],
      'any',
    )
    const docs = openSqliteDocStore(freshPath('docs'))
    const runner = new ProjectionRunner(ledger.store, docs, openActions, { batchSize: good })
    await assert.rejects(runner.catchUp(), (error: unknown) => {
      assert.ok(error instanceof ProjectionError)
      assert.equal(error.position, good + 1)
      assert.match(error.message, new RegExp(`position ${good + 1}: event ProposalSubmitted`))
      return true
    })
    assert.equal(runner.checkpoint(), good)
    docs.close()
    await ledger.store.close()
  })

  it('follows the ledger as events are appended', async () => {
    const ledger = openLedger()
    await ledger.append(history(0, 2, '2024-05-01T00:00:00.000Z'))
    const docs = openSqliteDocStore(freshPath('docs'))
    const runner = new ProjectionRunner(ledger.store, docs, openActions)
    const subscription = runner.follow()
    await ledger.append(history(2, 2, '2024-05-02T00:00:00.000Z'))
    const head = (await ledger.store.head()).position
    for (let tries = 0; runner.checkpoint() < head && tries < 100; tries++)
      await new Promise((r) => setTimeout(r, 20))
    assert.equal(runner.checkpoint(), head)
    assert.deepEqual(
      runner.list('open:').map(([key]) => key),
      ['open:p-2', 'open:p-3'],
    )
    await subscription.close()
    docs.close()
    await ledger.store.close()
  })
})
