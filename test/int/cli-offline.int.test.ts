import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { audit, auditedAction } from '../../projections/audit.js'
import { projections } from '../../projections/index.js'
import { openActions } from '../../projections/open-actions.js'
import { ProjectionRunner } from '../../projections/runner.js'
import { currentVerdict, type VerdictView } from '../../src/application/queries.js'
import { upTo } from '../../src/cli/read-only-ledger.js'
import { ConfigSchema, loadConfig } from '../../src/config.js'
import { recordedDecisions } from '../../src/decision/replay.js'
import { DECISION_NAMESPACE, DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, loadOrCreateSigningKey, type VerdictSigner } from '../../src/decision/signer.js'
import type { DataOf } from '../../src/domain/events.js'
import { FIELDS_ONLY_VERDICT_JWS_TYPE, jwsTypeOf, VERDICT_JWS_TYPE } from '../../src/domain/signing.js'
import { dataPaths } from '../../src/runtime.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import type { StoredEvent } from '../../src/store/port.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock, History } from '../support/history.js'
import { proposalData, verdictData, verdictIdOf, wholeLedger } from '../support/ledger-events.js'

const BIN = fileURLToPath(new URL('../../bin/governance-ledger.mjs', import.meta.url))
const EVENTS = 1500
const NAMESPACES = [DECISION_NAMESPACE, ...projections.map((p) => p.name)]

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of the test run without any of the service's variables, so only what a test sets counts. */
const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  for (const key of Object.keys(ConfigSchema.shape)) delete env[key]
  return env
}

/** Runs the real bin as a child process, as a user or a script would. */
const cli = (args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...cleanEnv(), ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const root = mkdtempSync(join(tmpdir(), 'cli-offline-'))
const dataDir = join(root, 'data')
let ledger: StoredEvent[] = []

/** Every derived state of a folder, as canonical JSON in key order, with its checkpoint. */
const dumps = (dir: string) => {
  const docs = openSqliteDocStore(join(dir, 'derived.db'))
  try {
    return Object.fromEntries(
      NAMESPACES.map((n) => [n, { checkpoint: docs.checkpoint(n), docs: docs.dump(n) }]),
    )
  } finally {
    docs.close()
  }
}

/** A copy of the prepared folder for a test that breaks something. */
const copyOfData = (name: string): string => {
  const copy = join(root, name)
  cpSync(dataDir, copy, { recursive: true })
  return copy
}

before(async () => {
  // a varied history through the real deciders, store and decision service, as the service would write it
  mkdirSync(dataDir, { mode: 0o700 })
  const config = loadConfig({ DATA_DIR: dataDir, AUTH_MODE: 'embedded' })
  const paths = dataPaths(config)
  const clock = new FakeClock()
  const store = openSqliteEventStore({ path: paths.ledger, clock: clock.now })
  const docs = openSqliteDocStore(paths.derived)
  try {
    const signer = createVerdictSigner(loadOrCreateSigningKey(paths.verdictKey).key)
    loadOrCreateSigningKey(paths.tokenKey)
    // an upgraded installation's ledger: its first verdicts signed over their fields alone, as verdicts were
    // before they carried the registered claims, the later ones with the claims
    const earliest = new Set<string>()
    const upgraded: VerdictSigner = {
      ...signer,
      sign: (verdict) => {
        if (earliest.size < 12) earliest.add(verdict.verdictId)
        const typ = earliest.has(verdict.verdictId) ? FIELDS_ONLY_VERDICT_JWS_TYPE : VERDICT_JWS_TYPE
        return signer.sign(verdict, typ)
      },
    }
    const decision = await DecisionService.answering(store, docs, upgraded)
    await new History(store, decision, clock, 20260105).generate(EVENTS)
    await decision.catchUp()
    for (const p of projections) await new ProjectionRunner(store, docs, p).catchUp()
    ledger = await wholeLedger(store)
  } finally {
    await store.close()
    docs.close()
  }
})

after(() => rmSync(root, { recursive: true, force: true }))

const env = (dir = dataDir) => ({ DATA_DIR: dir })

describe('cli verify', () => {
  it('exits 0 on an intact ledger and says how many events it checked', async () => {
    const run = await cli(['verify'], env())
    assert.equal(run.code, 0, run.stderr)
    const head = ledger.at(-1)
    assert.equal(
      run.stdout,
      `Ledger intact: ${ledger.length} events verified, head ${head?.position} ${head?.hash}\n`,
    )
    const json = JSON.parse((await cli(['verify', '--json'], env())).stdout)
    assert.equal(json.ok, true)
    assert.equal(json.checked, ledger.length)
    assert.equal(json.firstFault, null)
  })

  it('exits 1 and names the first bad position after a row is changed in the store', async () => {
    const dir = copyOfData('tampered-row')
    const target = ledger.find((e) => e.type === 'ExecutionFailed' && e.position > 100)
    assert.ok(target, 'the history has a failed execution to tamper with')
    const db = new Database(join(dir, 'ledger.db'))
    const changed = { ...(target.data as DataOf<'ExecutionFailed'>), error: 'nothing happened here' }
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run(JSON.stringify(changed), target.position)
    db.close()

    const run = await cli(['verify'], env(dir))
    assert.equal(run.code, 1)
    assert.match(
      run.stdout,
      new RegExp(`^Ledger BROKEN at position ${target.position}: its hash does not match`),
    )
    assert.match(run.stdout, new RegExp(`${target.position - 1} events verified before it`))
    const json = JSON.parse((await cli(['verify', '--json'], env(dir))).stdout)
    assert.deepEqual(json.firstFault, { kind: 'bad-hash', position: target.position })
    assert.equal(json.ok, false)
  })

  it('exits 1 and names the gap when a row is deleted', async () => {
    const dir = copyOfData('deleted-row')
    const db = new Database(join(dir, 'ledger.db'))
    db.prepare('DELETE FROM events WHERE position = ?').run(500)
    db.close()
    const run = await cli(['verify', '--json'], env(dir))
    assert.equal(run.code, 1)
    assert.deepEqual(JSON.parse(run.stdout).firstFault, { kind: 'gap', position: 501, expectedPosition: 500 })
  })

  it('never writes the ledger: its file is byte for byte the same afterwards', async () => {
    const dir = copyOfData('read-only')
    const before = new Database(join(dir, 'ledger.db'), { readonly: true })
    const rows = () => before.prepare('SELECT count(*) AS n, max(hash) AS h FROM events').get()
    const counted = rows()
    await cli(['verify'], env(dir))
    await cli(['head'], env(dir))
    assert.deepEqual(rows(), counted)
    before.close()
  })
})

describe('cli head', () => {
  it('shows the head and how far each consumer has got', async () => {
    const run = await cli(['head', '--json'], env())
    assert.equal(run.code, 0, run.stderr)
    const head = ledger.at(-1)
    const json = JSON.parse(run.stdout)
    assert.equal(json.position, head?.position)
    assert.equal(json.hash, head?.hash)
    assert.equal(json.recordedAt, head?.recordedAt)
    assert.deepEqual(json.consumers, Object.fromEntries(NAMESPACES.map((n) => [n, head?.position])))
  })
})

describe('cli audit', () => {
  const recovered = () => {
    const completed = ledger.find((e) => e.type === 'RollbackCompleted')
    assert.ok(completed, 'the history has a recovered action')
    return (completed.data as DataOf<'RollbackCompleted'>).proposalId
  }

  it('audit action --json: what changed, who, how fast, and a timeline holding every event of the action', async () => {
    const proposalId = recovered()
    const run = await cli(['audit', 'action', proposalId, '--json'], env())
    assert.equal(run.code, 0, run.stderr)
    const doc = JSON.parse(run.stdout)
    const stream = ledger.filter((e) => e.stream === `proposal-${proposalId}`)
    const submitted = stream[0]?.data as DataOf<'ProposalSubmitted'>
    assert.equal(doc.proposalId, proposalId)
    assert.equal(doc.outcome, 'recovered')
    assert.equal(doc.what.planHash, submitted.planHash)
    assert.equal(doc.what.resourceVersionBefore, submitted.snapshot.version)
    assert.equal(doc.who.agentId, submitted.agentId)
    const failed = stream.find((e) => e.type === 'ExecutionFailed')
    const completed = stream.findLast((e) => e.type === 'RollbackCompleted')
    assert.equal(doc.howFast.failedAt, failed?.recordedAt)
    assert.equal(
      doc.howFast.timeToRecoverySeconds,
      (Date.parse(completed?.recordedAt ?? '') - Date.parse(failed?.recordedAt ?? '')) / 1000,
    )
    const timeline = new Map(doc.timeline.map((t: { eventId: string; hash: string }) => [t.eventId, t.hash]))
    for (const e of stream)
      assert.equal(timeline.get(e.id), e.hash, `${e.type} at ${e.position} with its hash`)
    const lastVerdict = stream.findLast((e) => e.type === 'VerdictIssued')
    assert.ok(lastVerdict)
    assert.equal(doc.currentVerdict.verdictId, (lastVerdict.data as DataOf<'VerdictIssued'>).verdictId)
  })

  it('the current verdict of every action, read from its latest verdict on, is the one its whole stream tells', async () => {
    const paths = dataPaths(loadConfig({ DATA_DIR: dataDir, AUTH_MODE: 'embedded' }))
    const store = openSqliteEventStore({ path: paths.ledger })
    const docs = openSqliteDocStore(paths.derived)
    try {
      const view = new ProjectionRunner(store, docs, audit)
      const seen = (v: VerdictView | null) => v && [v.verdictId, v.revision, v.revoked, v.expired]
      const ids = ledger.flatMap((e) =>
        e.type === 'ProposalSubmitted' ? [(e.data as DataOf<'ProposalSubmitted'>).proposalId] : [],
      )
      let skipped = 0
      for (const id of ids) {
        const audited = auditedAction(view, id)
        assert.ok(audited, id)
        const fromLatest = await currentVerdict(store, id, audited.verdictFrom)
        assert.deepEqual(seen(fromLatest), seen(await currentVerdict(store, id)), id)
        if (audited.verdictFrom > 2) skipped += 1
      }
      assert.ok(skipped > 10, `the history decides actions again (${skipped} read from a later verdict)`)
    } finally {
      await store.close()
      docs.close()
    }
  })

  it('a revocation after the latest verdict is still seen when the current verdict is read from that verdict on', async () => {
    const dir = mkdtempSync(join(root, 'revoked-'))
    const store = openSqliteEventStore({ path: join(dir, 'ledger.db') })
    const docs = openSqliteDocStore(join(dir, 'derived.db'))
    try {
      const P = { proposalId: 'p-revoked' }
      const decided = { decision: 'allow', decidedAt: '2024-05-01T10:00:00.000Z' } as const
      const stream = 'proposal-p-revoked'
      const event = (type: string, data: object) => ({ type, data, metadata: { actor: 'test' } })
      await store.append(stream, [event('ProposalSubmitted', proposalData(P))], 'no-stream')
      await store.append(stream, [event('VerdictIssued', verdictData(P, { ...decided, revision: 1 }))], 1)
      await store.append(stream, [event('VerdictIssued', verdictData(P, { ...decided, revision: 2 }))], 2)
      const revocation = {
        verdictId: verdictIdOf('p-revoked', 2),
        proposalId: 'p-revoked',
        reason: 'stop',
        killSwitch: null,
      }
      await store.append(stream, [event('VerdictRevoked', revocation)], 3)
      const view = new ProjectionRunner(store, docs, audit)
      await view.catchUp()
      const audited = auditedAction(view, 'p-revoked')
      assert.equal(audited?.verdictFrom, 3, 'the latest verdict is the third event of the stream')
      const verdict = await currentVerdict(store, 'p-revoked', audited.verdictFrom)
      assert.deepEqual([verdict?.revision, verdict?.revoked], [2, true])
      assert.deepEqual(verdict, await currentVerdict(store, 'p-revoked'))
    } finally {
      await store.close()
      docs.close()
    }
  })

  it('audit action prints the same story for people', async () => {
    const proposalId = recovered()
    const run = await cli(['audit', 'action', proposalId], env())
    assert.equal(run.code, 0, run.stderr)
    const stream = ledger.filter((e) => e.stream === `proposal-${proposalId}`)
    const submitted = stream[0]?.data as DataOf<'ProposalSubmitted'>
    assert.match(
      run.stdout,
      new RegExp(`^Action ${proposalId}: recovered \\(as of ledger position ${ledger.length}\\)`),
    )
    for (const heading of ['What changed', 'Who changed it', 'How fast can we undo it', 'Current verdict:'])
      assert.ok(run.stdout.includes(heading), heading)
    assert.match(run.stdout, new RegExp(`tool\\.action\\s+${submitted.tool}\\.${submitted.action}\\n`))
    assert.match(run.stdout, new RegExp(`plan hash\\s+${submitted.planHash}\\n`))
    assert.match(run.stdout, /time to recovery\s+\d+(\.\d)? (s|min)\n/)
    for (const e of stream)
      assert.match(run.stdout, new RegExp(`^\\s*${e.position}  ${e.recordedAt}  ${e.type} `, 'm'))
  })

  it('audit action of an unknown id exits 1 with one line, and prints nothing on stdout', async () => {
    const run = await cli(['audit', 'action', 'p-does-not-exist'], env())
    assert.equal(run.code, 1)
    assert.equal(run.stdout, '')
    assert.equal(
      run.stderr,
      `governance-ledger: no action p-does-not-exist in the ledger (as of position ${ledger.length})\n`,
    )
  })

  it('audit agent --json: its levels and every action it proposed', async () => {
    const run = await cli(['audit', 'agent', 'agent-2', '--json'], env())
    assert.equal(run.code, 0, run.stderr)
    const doc = JSON.parse(run.stdout)
    const proposed = ledger
      .filter(
        (e) =>
          e.type === 'ProposalSubmitted' && (e.data as DataOf<'ProposalSubmitted'>).agentId === 'agent-2',
      )
      .map((e) => (e.data as DataOf<'ProposalSubmitted'>).proposalId)
    assert.ok(proposed.length > 0)
    assert.deepEqual(
      doc.actions.map((a: { proposalId: string }) => a.proposalId),
      proposed,
    )
    const lastChange = ledger.findLast(
      (e) =>
        (e.type === 'AgentPromoted' || e.type === 'AgentDemoted') &&
        (e.data as { agentId: string; environment: string }).agentId === 'agent-2' &&
        (e.data as { environment: string }).environment === 'production',
    )
    assert.ok(lastChange, 'agent-2 was promoted in production')
    assert.equal(doc.levels.production.level, (lastChange.data as { to: string }).to)
    assert.equal(doc.levels.production.eventId, lastChange.id)
  })
})

describe('cli metrics and open-actions', () => {
  const DAY = ['--window', 'day', '--from', '2026-01-05T00:00:00Z', '--to', '2026-01-05T23:59:59Z']

  it('metrics --json counts the verdicts and violations the ledger holds in the range', async () => {
    const run = await cli(['metrics', ...DAY, '--json'], env())
    assert.equal(run.code, 0, run.stderr)
    const json = JSON.parse(run.stdout)
    const inDay = ledger.filter((e) => e.recordedAt.startsWith('2026-01-05'))
    assert.equal(json.series.length, 1)
    assert.equal(json.totals.verdicts, inDay.filter((e) => e.type === 'VerdictIssued').length)
    assert.equal(json.totals.violations.count, inDay.filter((e) => e.type === 'ViolationRecorded').length)
    assert.ok(json.totals.timeToRecovery.overall.count > 0, 'the history has recoveries')
    assert.equal(json.asOf, ledger.length)
    assert.equal(json.shadowPolicy, null, 'the history puts no policy in shadow')
  })

  it('metrics prints a table per window and the unrecovered failures', async () => {
    const run = await cli(['metrics', ...DAY], env())
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /^WINDOW\s+VERDICTS\s+ALLOWED\s+BLOCKED\s+ENDED\s+UNSAFE BLOCKED\s+RATE/m)
    assert.match(run.stdout, /^2026-01-05\s+\d+/m)
    assert.match(run.stdout, /unsafe actions blocked\s+\d+ of \d+ ended/)
    assert.match(run.stdout, /awaiting evidence now\s+\d+ open and blocked/)
    assert.match(run.stdout, /Unrecovered failures/)
    assert.match(run.stdout, /^Shadow policy: none$/m)
  })

  it('open-actions --json lists the actions in flight with their age, and filters by state', async () => {
    const all = JSON.parse((await cli(['open-actions', '--json'], env())).stdout)
    const docs = dumps(dataDir)['open-actions']?.docs.filter(([key]) => key.startsWith('open:')) ?? []
    assert.equal(all.actions.length, docs.length)
    assert.ok(all.actions.length > 0)
    for (const a of all.actions) assert.ok(Number.isInteger(a.ageSeconds) && a.ageSeconds >= 0)
    const failed = JSON.parse((await cli(['open-actions', '--state', 'failed', '--json'], env())).stdout)
    assert.deepEqual(
      failed.actions.map((a: { proposalId: string }) => a.proposalId),
      all.actions
        .filter((a: { state: string }) => a.state === 'failed')
        .map((a: { proposalId: string }) => a.proposalId),
    )
  })
})

describe('cli --as-of', () => {
  it('open-actions --as-of answers as the ledger stood at a position or a time, equal to a rebuild stopped there', async () => {
    const position = Math.floor(ledger.length / 2)
    const run = await cli(['open-actions', '--as-of', String(position), '--json'], env())
    assert.equal(run.code, 0, run.stderr)
    const past = JSON.parse(run.stdout)
    assert.equal(past.asOf, position)
    const dir = copyOfData('as-of')
    const store = openSqliteEventStore({ path: join(dir, 'ledger.db') })
    const rebuilt = new ProjectionRunner(upTo(store, position), new MemoryDocStore(), openActions)
    await rebuilt.rebuild()
    await store.close()
    const ids = (actions: Array<{ proposalId: string }>) => actions.map((a) => a.proposalId)
    assert.deepEqual(
      ids(past.actions),
      rebuilt.list('open:').map(([, doc]) => doc.proposalId),
    )
    assert.notDeepEqual(
      ids(past.actions),
      ids(JSON.parse((await cli(['open-actions', '--json'], env())).stdout).actions),
    )
    // a time stands for the last position recorded at or before it
    const time = ledger[position - 1]?.recordedAt ?? ''
    const byTime = JSON.parse((await cli(['open-actions', '--as-of', time, '--json'], env())).stdout)
    assert.equal(byTime.asOf, ledger.filter((e) => e.recordedAt <= time).length)
    const bad = await cli(['open-actions', '--as-of', 'last-tuesday'], env())
    assert.equal(bad.code, 2, bad.stderr)
    const beyond = await cli(['audit', 'agent', 'agent-1', '--as-of', String(ledger.length + 1)], env())
    assert.equal(beyond.code, 1)
    assert.match(beyond.stderr, /--as-of: .*beyond the ledger's head/)
  })
})

describe('cli replay', () => {
  it('rebuilds every projection and the decision world byte for byte, reporting progress on stderr', async () => {
    const dir = copyOfData('rebuild')
    const expected = dumps(dir)
    // damage the derived state: a stray document in every namespace and a real one gone
    const docs = openSqliteDocStore(join(dir, 'derived.db'))
    for (const name of NAMESPACES) {
      const [first] = docs.dump(name)
      const changes = new Map<string, unknown>([['stray', { left: 'behind' }]])
      if (first) changes.set(first[0], null)
      docs.commit(name, changes, docs.checkpoint(name))
    }
    docs.close()
    assert.notDeepEqual(dumps(dir), expected)

    const run = await cli(['replay'], env(dir))
    assert.equal(run.code, 0, run.stderr)
    const lines = run.stderr.trimEnd().split('\n')
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      [...projections.map((p) => p.name), DECISION_NAMESPACE],
    )
    for (const line of lines) assert.match(line, new RegExp(`\\s${ledger.length} events\\s.*\\d+ events/s$`))
    assert.deepEqual(dumps(dir), expected)
  })

  it('replay --check re-decides the whole ledger and finds 0 differences, changing nothing', async () => {
    const dir = copyOfData('check')
    const before = dumps(dir)
    const store = openSqliteEventStore({ path: join(dir, 'ledger.db') })
    const decisions = await recordedDecisions(store)
    const recorded = decisions.length
    await store.close()
    // verdicts of both forms, which replay must both reproduce byte for byte
    const forms = decisions.flatMap((d) =>
      d.type === 'VerdictIssued' ? [jwsTypeOf((d.data as DataOf<'VerdictIssued'>).signature)] : [],
    )
    const count = (typ: string) => forms.filter((t) => t === typ).length
    assert.equal(count(FIELDS_ONLY_VERDICT_JWS_TYPE), 12, 'verdicts signed over their fields alone')
    assert.equal(count(VERDICT_JWS_TYPE), forms.length - 12, 'the rest with the registered claims')
    const run = await cli(['replay', '--check'], env(dir))
    assert.equal(run.code, 0, run.stderr)
    assert.equal(
      run.stdout,
      `Re-decided ${ledger.length} events: ${recorded} of ${recorded} recorded answers identical, 0 differences.\n`,
    )
    const json = JSON.parse((await cli(['replay', '--check', '--json'], env(dir))).stdout)
    assert.equal(json.ok, true)
    assert.equal(json.differenceCount, 0)
    assert.equal(json.identical, recorded)
    assert.ok(recorded > 100)
    assert.deepEqual(dumps(dir), before)
  })

  it('replay --check exits 1 and names the event whose recorded answer was changed', async () => {
    const dir = copyOfData('forged-verdict')
    const target = ledger.find(
      (e) => e.type === 'VerdictIssued' && (e.data as DataOf<'VerdictIssued'>).decision === 'block',
    )
    assert.ok(target)
    const db = new Database(join(dir, 'ledger.db'))
    const forged = { ...(target.data as DataOf<'VerdictIssued'>), decision: 'allow' }
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run(JSON.stringify(forged), target.position)
    db.close()
    const run = await cli(['replay', '--check', '--json'], env(dir))
    assert.equal(run.code, 1)
    const json = JSON.parse(run.stdout)
    assert.equal(json.differenceCount, 1)
    assert.equal(json.differences[0].causationId, target.metadata.causationId)
    assert.equal(json.differences[0].recorded[0].data.decision, 'allow')
    assert.equal(json.differences[0].replayed[0].data.decision, 'block')
  })
})

describe('cli usage and folders', () => {
  it('exits 2 with one line on a wrong command line', async () => {
    const run = await cli(['audit', 'action'], env())
    assert.equal(run.code, 2)
    assert.equal(run.stdout, '')
    assert.equal(
      run.stderr,
      'governance-ledger: audit action: expects PROPOSAL_ID and nothing else (usage: governance-ledger audit action PROPOSAL_ID [--as-of POSITION|TIME])\n',
    )
  })

  it('refuses to read a folder with no ledger, and creates nothing there', async () => {
    const empty = mkdtempSync(join(root, 'empty-'))
    for (const args of [['verify'], ['head'], ['audit', 'action', 'p-1'], ['replay', '--check']]) {
      const run = await cli(args, env(empty))
      assert.equal(run.code, 1, args.join(' '))
      assert.match(run.stderr, /^governance-ledger: no ledger in .*: set DATA_DIR or --data-dir/)
    }
    assert.deepEqual(readdirSync(empty), [])
    assert.equal(existsSync(join(empty, 'ledger.db')), false)
  })

  it('takes --data-dir in place of DATA_DIR', async () => {
    const run = await cli(['head', '--json', '--data-dir', dataDir], {})
    assert.equal(run.code, 0, run.stderr)
    assert.equal(JSON.parse(run.stdout).position, ledger.length)
  })
})
