// Tampering with a copy of a real SQLite ledger, the ways someone who can write the data folder would: cut its
// tail, or delete and edit events and then write the chain again so that it holds. Every tampering leaves a
// ledger whose hash chain verifies, and no derived state (the service rebuilds it from the ledger): what the
// chain alone cannot catch.
import { cpSync, rmSync } from 'node:fs'
import Database from 'better-sqlite3'
import { loadPrivateKey } from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'
import { decideAndEvolve } from '../../src/decision/decide.js'
import { DECISION_ACTOR, DECISION_NAMESPACE, resetWorld, toWrites } from '../../src/decision/service.js'
import { createVerdictSigner } from '../../src/decision/signer.js'
import { World } from '../../src/decision/world.js'
import { canonicalizeRecorded } from '../../src/domain/canonical.js'
import { type DataOf, DECISION_OUTPUT_TYPES, type EventType, toLedgerEvent } from '../../src/domain/events.js'
import { jwsTypeOf, VERDICT_JWS_TYPE, type VerdictJwsType } from '../../src/domain/signing.js'
import { dataPaths } from '../../src/runtime.js'
import { chainHash } from '../../src/store/chain.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import { GENESIS_HASH, type StoredEvent } from '../../src/store/port.js'
import { type EventRow, fromRow, toRow } from '../../src/store/sqlite/event-table.js'
import {
  type AllowedProposal,
  allowedProposal,
  type Env,
  expectError,
  governed,
  proposalBody,
  SEED,
  seedWorld,
  startTestApi,
} from './api.js'

/** The files of a data folder, as the service lays them out. */
const pathsOf = (dataDir: string) => {
  const { ledger, derived, verdictKey } = dataPaths(loadConfig({ DATA_DIR: dataDir }))
  return { ledger, derived, verdictKey }
}

/** The derived state would disagree with the tampered ledger: gone, as an attacker would leave it. */
const dropDerived = (dataDir: string): void => {
  const { derived } = pathsOf(dataDir)
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${derived}${suffix}`, { force: true })
}

/** Runs `work` in one transaction on the folder's ledger file, then drops the derived state. */
const withLedger = (dataDir: string, work: (db: Database.Database) => void): void => {
  const db = new Database(pathsOf(dataDir).ledger)
  try {
    db.transaction(() => work(db))()
  } finally {
    db.close()
  }
  dropDerived(dataDir)
}

/** Every event of the folder's ledger, in position order. */
export const readLedger = (dataDir: string): StoredEvent[] => {
  const db = new Database(pathsOf(dataDir).ledger, { readonly: true })
  try {
    return db.prepare<[], EventRow>('SELECT * FROM events ORDER BY position').all().map(fromRow)
  } finally {
    db.close()
  }
}

/** Cuts the ledger after `position`: the events after it go, and the idempotency keys that reach them. */
const cutAfter = (db: Database.Database, position: number): void => {
  db.prepare('DELETE FROM events WHERE position > ?').run(position)
  db.prepare('DELETE FROM idempotency WHERE last_position > ?').run(position)
}

/** Drops the last `n` events; nothing else changes, and the shorter chain still holds. */
export const truncateLast = (dataDir: string, n: number): void =>
  withLedger(dataDir, (db) => {
    const head = db.prepare<[], number | null>('SELECT MAX(position) FROM events').pluck().get() ?? 0
    cutAfter(db, Math.max(0, head - n))
  })

/** Drops the first event that matches and every event after it. */
export const truncateFrom = (dataDir: string, predicate: (event: StoredEvent) => boolean): void => {
  const first = readLedger(dataDir).find(predicate)
  if (!first) throw new Error('truncateFrom: no event matches')
  withLedger(dataDir, (db) => cutAfter(db, first.position - 1))
}

/** What an event says, apart from where it stands: what `rewriteEvents` changes. */
export type Content = Pick<StoredEvent, 'data' | 'metadata'>

/**
 * Writes the ledger again as `events` (each keeping its id, type, stream, content and recordedAt), in this
 * order: positions 1.., stream versions 1.. per stream, every hash computed again from the genesis link, the
 * data stored in canonical form as the service stores it. The rows before the first that changes stay as they
 * were; the idempotency keys follow their events to their new positions, or go with them.
 */
const rewriteChain = (dataDir: string, events: readonly StoredEvent[]): void => {
  const before = readLedger(dataDir)
  const moved = new Map<number, number>()
  const versions = new Map<string, number>()
  let prevHash = GENESIS_HASH
  const rows = events.map((e, i) => {
    const streamVersion = (versions.get(e.stream) ?? 0) + 1
    versions.set(e.stream, streamVersion)
    const placed = { ...e, position: i + 1, streamVersion }
    const dataText = canonicalizeRecorded(placed.data)
    const hash = chainHash(prevHash, placed, dataText)
    moved.set(e.position, placed.position)
    const row = { event: { ...placed, prevHash, hash }, dataText }
    prevHash = hash
    return row
  })
  const firstChanged = rows.findIndex(({ event }, i) => event.hash !== before[i]?.hash)
  const keep = firstChanged === -1 ? rows.length : firstChanged
  withLedger(dataDir, (db) => {
    db.prepare('DELETE FROM events WHERE position > ?').run(keep)
    const insert = db.prepare(
      `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    for (const { event, dataText } of rows.slice(keep)) insert.run(...toRow(event, dataText))
    const keys = db
      .prepare<[], { key: string; first: number; last: number }>(
        'SELECT key, first_position AS first, last_position AS last FROM idempotency',
      )
      .all()
    const update = db.prepare('UPDATE idempotency SET first_position = ?, last_position = ? WHERE key = ?')
    const remove = db.prepare('DELETE FROM idempotency WHERE key = ?')
    for (const { key, first, last } of keys) {
      const left: number[] = []
      for (let p = first; p <= last; p += 1) {
        const to = moved.get(p)
        if (to !== undefined) left.push(to)
      }
      if (left.length === 0) remove.run(key)
      else update.run(Math.min(...left), Math.max(...left), key)
    }
  })
}

/**
 * Deletes every event that matches and writes the chain again consistently: positions and stream versions
 * renumbered, every hash from the first deletion on computed again, and each change request's `basedOn`
 * stream version moved to where the events it counted now stand. Answers how many events were deleted.
 */
export const deleteWhere = (dataDir: string, predicate: (event: StoredEvent) => boolean): number => {
  const events = readLedger(dataDir)
  const kept = events.filter((e) => !predicate(e))
  if (kept.length === events.length) throw new Error('deleteWhere: no event matches')
  const keptVersions = new Map<string, number[]>()
  for (const e of kept) keptVersions.set(e.stream, [...(keptVersions.get(e.stream) ?? []), e.streamVersion])
  const rebased = kept.map((e) => {
    if (e.type !== 'ChangeRequested') return e
    const data = e.data as DataOf<'ChangeRequested'>
    const { stream, version } = data.basedOn
    const left = (keptVersions.get(stream) ?? []).filter((v) => v <= version).length
    return left === version ? e : { ...e, data: { ...data, basedOn: { stream, version: left } } }
  })
  rewriteChain(dataDir, rebased)
  return events.length - kept.length
}

/**
 * Edits the events that match (their data, their metadata or both, as `change` answers) and writes the chain
 * again consistently from the first edit on. Answers how many events were edited.
 */
export const rewriteEvents = (
  dataDir: string,
  predicate: (event: StoredEvent) => boolean,
  change: (event: StoredEvent) => Partial<Content>,
): number => {
  let edited = 0
  const events = readLedger(dataDir).map((e) => {
    if (!predicate(e)) return e
    edited += 1
    return { ...e, ...change(e) }
  })
  if (edited === 0) throw new Error('rewriteEvents: no event matches')
  rewriteChain(dataDir, events)
  return edited
}

const isAnswer = (e: StoredEvent): boolean =>
  DECISION_OUTPUT_TYPES.has(e.type as EventType) && e.metadata.actor === DECISION_ACTOR

/**
 * Decides the ledger again as it now stands and writes each recorded answer of the decision service over with
 * the answer deciding gives, verdicts signed again with the verdict key found in the data folder (in the JWS
 * form each was recorded in), then writes the chain again. After a tampering with the facts the answers agree
 * with them again, and `replay --check` finds nothing. Answers are rewritten in place: it fails when the
 * tampering changed how many answers an event draws. Answers how many answers changed.
 */
export const redecide = async (dataDir: string): Promise<number> => {
  const signer = createVerdictSigner(loadPrivateKey(pathsOf(dataDir).verdictKey))
  const docs = new MemoryDocStore()
  resetWorld(docs, DECISION_NAMESPACE)
  const world = World.over(docs, DECISION_NAMESPACE)
  /** the answers deciding gives, by the id of the event they answer, not yet met in the ledger */
  const due = new Map<string, { type: string; data: unknown }[]>()
  let changed = 0
  const events: StoredEvent[] = []
  for (const recorded of readLedger(dataDir)) {
    let event = recorded
    if (isAnswer(recorded)) {
      const answer = due.get(recorded.metadata.causationId ?? '')?.shift()
      if (answer?.type !== recorded.type)
        throw new Error(`redecide: deciding again gives no ${recorded.type} at ${recorded.position}`)
      let data = answer.data
      if (recorded.type === 'VerdictIssued') {
        const { signature: _replayed, ...fields } = data as DataOf<'VerdictIssued'>
        const form = jwsTypeOf((recorded.data as DataOf<'VerdictIssued'>).signature)
        const typ = (typeof form === 'string' ? form : VERDICT_JWS_TYPE) as VerdictJwsType
        data = { ...fields, signature: await signer.sign(fields, typ) }
      }
      if (canonicalizeRecorded(data) !== canonicalizeRecorded(recorded.data)) changed += 1
      event = { ...recorded, data }
    }
    for (const write of await toWrites(decideAndEvolve(world, toLedgerEvent(event)), signer, event)) {
      for (const e of write.events) due.set(event.id, [...(due.get(event.id) ?? []), e])
    }
    events.push(event)
  }
  const missing = [...due.values()].flat().length
  if (missing > 0) throw new Error(`redecide: deciding again gives ${missing} answers the ledger lacks`)
  rewriteChain(dataDir, events)
  return changed
}

// ---------- a real ledger, and the tamper table ----------

/**
 * A data folder written by the real service through its HTTP API, copied to `into` once the service has
 * closed (its SQLite files quiescent): the seeded world, then an action allowed (simulation, rollback test,
 * approval) and executed with success; one that fails and is rolled back; one whose allow a kill switch on
 * kubectl revokes, whose start the gate then refuses, and which, once two policy admins have released the
 * switch, is allowed again and runs; and a proposal made during the incident, blocked and left awaiting
 * evidence. `overrides` configure the service. Resolves `into`.
 */
export const buildBaseLedger = async (into: string, overrides: Env = {}): Promise<string> => {
  // checkpoints only where the history cuts them: never by the clock, however long a loaded machine takes
  const api = await startTestApi({ CHECKPOINT_EVERY_SECONDS: '86400', ...overrides })
  try {
    const world = await seedWorld(api)
    const agent = api.as('agent-1', 'agent')
    const executor = api.as(SEED.executor, 'executor')
    const admin = api.as(SEED.admin, 'policy-admin')
    const created = async (what: string, answer: Promise<{ statusCode: number; body: string }>) => {
      const r = await answer
      if (r.statusCode !== 201) throw new Error(`base ledger: ${what} answered ${r.statusCode}: ${r.body}`)
      return JSON.parse(r.body)
    }
    const start = (p: Pick<AllowedProposal, 'proposalId' | 'verdictId' | 'actionDigest'>) =>
      executor.post(`/v1/proposals/${p.proposalId}/executions`, {
        verdictId: p.verdictId,
        actionDigest: p.actionDigest,
      })
    const succeed = (proposalId: string, executionId: string) =>
      created(
        'success',
        executor.post(`/v1/proposals/${proposalId}/executions/${executionId}/success`, {
          resourceVersionAfter: 'v2',
        }),
      )

    const succeeded = await allowedProposal(api, world, { replicas: 5 })
    await succeed(succeeded.proposalId, (await created('start', start(succeeded))).executionId)

    const failed = await allowedProposal(api, world, { replicas: 6 })
    const base = `/v1/proposals/${failed.proposalId}`
    const { executionId } = await created('start', start(failed))
    await created(
      'failure',
      executor.post(`${base}/executions/${executionId}/failure`, {
        error: 'pods crash-looping after the scale-up',
        resourceVersionAfter: 'v2',
      }),
    )
    const { rollbackId } = await created('rollback', executor.post(`${base}/rollbacks`, { executionId }))
    await created(
      'rollback completion',
      executor.post(`${base}/rollbacks/${rollbackId}/completion`, { resourceVersionAfter: 'v3' }),
    )

    // a checkpoint before the incident, as the service cuts them, for a witness to keep
    await api.settle()
    await api.runtime.checkpoints.tick(Date.now(), true)

    const held = await allowedProposal(api, world, { replicas: 7 })
    const incident = { scope: 'tool', target: 'kubectl' }
    await created('kill switch', admin.post('/v1/kill-switches', { ...incident, reason: 'incident 7' }))
    await api.settle()
    expectError(await start(held), 409, 'conflict')
    await created(
      'proposal in the incident',
      agent.post('/v1/proposals', proposalBody(world, { replicas: 8 })),
    )
    await governed(api, 'release', (a) =>
      a.post('/v1/kill-switches/release', { ...incident, reason: 'incident 7 resolved' }),
    )
    await api.settle()
    const { verdict } = JSON.parse((await agent.get(`/v1/proposals/${held.proposalId}/verdict`)).body)
    if (verdict?.decision !== 'allow')
      throw new Error(`base ledger: not allowed again after the release: ${JSON.stringify(verdict)}`)
    const again = await created('start after the release', start({ ...held, verdictId: verdict.verdictId }))
    await succeed(held.proposalId, again.executionId)
    await api.settle()

    await api.app.close()
    // closing cuts the last checkpoint, of the whole ledger
    await api.runtime.close()
    cpSync(api.dataDir, into, { recursive: true })
  } finally {
    await api.close()
  }
  return into
}

/** A kill switch, or the request and approval of a release of one. */
const isKillSwitch = (releases: ReadonlySet<string>) => (e: StoredEvent) =>
  e.type === 'KillSwitchEngaged' ||
  e.type === 'KillSwitchReleased' ||
  ((e.type === 'ChangeRequested' || e.type === 'ChangeApproved' || e.type === 'ChangeRefused') &&
    releases.has((e.data as { requestId: string }).requestId))

const releaseRequests = (dataDir: string): Set<string> =>
  new Set(
    readLedger(dataDir).flatMap((e) =>
      e.type === 'ChangeRequested' &&
      (e.data as DataOf<'ChangeRequested'>).change.kind === 'release-kill-switch'
        ? [(e.data as DataOf<'ChangeRequested'>).requestId]
        : [],
    ),
  )

/** The first approval now names another approver, as its data and as the principal who recorded it. */
const changeWhoApproved = (dataDir: string): void => {
  const first = readLedger(dataDir).find((e) => e.type === 'ApprovalGranted')
  rewriteEvents(
    dataDir,
    (e) => e.id === first?.id,
    (e) => ({
      data: { ...(e.data as DataOf<'ApprovalGranted'>), approver: 'approver-2' },
      metadata: { ...e.metadata, actor: 'approver-2' },
    }),
  )
}

export interface Tampering {
  readonly name: string
  apply(dataDir: string): Promise<void> | void
}

/**
 * The tamper table: each tampering of a copy of the base ledger, named as the table names it, and one more, the
 * consistent rewrite with re-signed verdicts. Each leaves a chain that verifies and no derived state.
 */
export const TAMPERINGS: readonly Tampering[] = [
  { name: 'truncate the last 5 events', apply: (dir) => truncateLast(dir, 5) },
  {
    name: 'truncate from the first kill switch on',
    apply: (dir) => truncateFrom(dir, (e) => e.type === 'KillSwitchEngaged'),
  },
  {
    name: 'delete every kill switch and revocation, renumber, recompute the hashes',
    apply: (dir) => {
      const killSwitch = isKillSwitch(releaseRequests(dir))
      deleteWhere(dir, (e) => killSwitch(e) || e.type === 'VerdictRevoked')
    },
  },
  { name: 'change who approved, recompute the hashes', apply: changeWhoApproved },
  {
    name: "change who reported an execution's success, recompute the hashes",
    apply: (dir) => {
      const first = readLedger(dir).find((e) => e.type === 'ExecutionSucceeded')
      rewriteEvents(
        dir,
        (e) => e.id === first?.id,
        (e) => ({ metadata: { ...e.metadata, actor: 'executor-2' } }),
      )
    },
  },
  {
    name: 'change who approved, recompute the hashes, re-decide and re-sign the verdicts',
    apply: async (dir) => {
      changeWhoApproved(dir)
      await redecide(dir)
    },
  },
]

/** A fresh copy of the base ledger at `into`, tampered with. */
export const tamperedCopy = async (base: string, into: string, tampering: Tampering): Promise<string> => {
  cpSync(base, into, { recursive: true })
  await tampering.apply(into)
  return into
}
