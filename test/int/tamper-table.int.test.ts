import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { main } from '../../src/cli/main.js'
import { checkpointVerifierKeys, readKeyList } from '../../src/keys/key-list.js'
import type { StoredEvent } from '../../src/store/port.js'
import { buildBaseLedger, readLedger, TAMPERINGS, tamperedCopy } from '../support/tamper.js'

/** Runs the CLI in-process on a data folder, with captured output. */
const cli = async (argv: readonly string[], dataDir: string) => {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    env: { DATA_DIR: dataDir },
  })
  return { code, stdout, stderr, json: JSON.parse(stdout || 'null') }
}

const types = (ledger: readonly StoredEvent[]) => ledger.map((e) => e.type)

/** The rewritten chain is one the service could have written: positions and stream versions without a gap. */
const assertConsistent = (dataDir: string, ledger: readonly StoredEvent[]) => {
  const versions = new Map<string, number>()
  ledger.forEach((e, i) => {
    assert.equal(e.position, i + 1)
    const expected = (versions.get(e.stream) ?? 0) + 1
    assert.equal(e.streamVersion, expected, `${e.stream} at position ${e.position}`)
    versions.set(e.stream, expected)
  })
  const db = new Database(join(dataDir, 'ledger.db'), { readonly: true })
  const keys = db
    .prepare<[], { first: number; last: number }>(
      'SELECT first_position AS first, last_position AS last FROM idempotency',
    )
    .all()
  db.close()
  for (const { first, last } of keys) assert.ok(1 <= first && first <= last && last <= ledger.length)
}

const root = mkdtempSync(join(tmpdir(), 'tamper-table-'))
let base = ''
let baseLedger: StoredEvent[] = []
/** the checkpoints the service cut of the base ledger, kept outside any data folder, and the key they pin */
let kept: Array<{ readonly path: string; readonly size: number }> = []
let pinnedKey = ''

before(async () => {
  base = await buildBaseLedger(join(root, 'base'))
  baseLedger = readLedger(base)
  mkdirSync(join(root, 'kept'))
  // the one cut before the incident (the newest before it: the service may have cut earlier ones on its own
  // as it started) and the one of the whole ledger, cut as it stopped
  const incident = baseLedger.findIndex((e) => e.type === 'KillSwitchEngaged') + 1
  const sizes = readdirSync(join(base, 'checkpoints')).map((name) => Number.parseInt(name, 10))
  const before = Math.max(...sizes.filter((size) => size < incident))
  kept = readdirSync(join(base, 'checkpoints'))
    .sort()
    .filter((name) => [before, baseLedger.length].includes(Number.parseInt(name, 10)))
    .map((name) => {
      copyFileSync(join(base, 'checkpoints', name), join(root, 'kept', name))
      return { path: join(root, 'kept', name), size: Number.parseInt(name, 10) }
    })
  const [key, ...others] = checkpointVerifierKeys(readKeyList(join(base, 'keys', 'public-keys.json')))
  assert.ok(key && others.length === 0, 'one checkpoint key')
  pinnedKey = key
})

/** `verify --checkpoint` against each kept checkpoint, the witness's key pinned. */
const againstKept = (dir: string) =>
  Promise.all(kept.map((k) => cli(['verify', '--checkpoint', k.path, '--key', pinnedKey, '--json'], dir)))
after(() => rmSync(root, { recursive: true, force: true }))

/**
 * What a checkpoint kept before the tampering says of each row: against the one cut before the incident, and
 * against the one cut of the whole ledger. A row that shortens the ledger reads as truncated; one that
 * rewrites it, its hashes recomputed and its verdicts re-signed, as forked.
 */
const AGAINST_KEPT: Record<string, readonly [string, string]> = {
  'truncate the last 5 events': ['consistent', 'truncated'],
  'truncate from the first kill switch on': ['consistent', 'truncated'],
  'delete every kill switch and revocation, renumber, recompute the hashes': ['consistent', 'truncated'],
  'change who approved, recompute the hashes': ['forked', 'forked'],
  "change who reported an execution's success, recompute the hashes": ['forked', 'forked'],
  'change who approved, recompute the hashes, re-decide and re-sign the verdicts': ['forked', 'forked'],
}

/**
 * What each row does to the base ledger, and what `replay --check` reports today: the number of differences
 * the table gives (0 = ok), or null where the table gives none (then it is only recorded).
 */
const TODAY: Record<string, { readonly differences: number | null; did(tampered: StoredEvent[]): void }> = {
  'truncate the last 5 events': {
    differences: 0,
    did: (t) => assert.deepEqual(t, baseLedger.slice(0, -5)),
  },
  'truncate from the first kill switch on': {
    differences: null,
    did: (t) => {
      const first = baseLedger.findIndex((e) => e.type === 'KillSwitchEngaged')
      assert.deepEqual(t, baseLedger.slice(0, first))
    },
  },
  'delete every kill switch and revocation, renumber, recompute the hashes': {
    differences: 2,
    did: (t) => {
      for (const type of ['KillSwitchEngaged', 'KillSwitchReleased', 'VerdictRevoked'])
        assert.ok(types(baseLedger).includes(type) && !types(t).includes(type), type)
      // the engagement, the revocation, and the release with its request and approval
      assert.equal(t.length, baseLedger.length - 5)
    },
  },
  'change who approved, recompute the hashes': {
    differences: 1,
    did: (t) => {
      const approvals = t.filter((e) => e.type === 'ApprovalGranted')
      assert.deepEqual(
        approvals.map((e) => [(e.data as { approver: string }).approver, e.metadata.actor]),
        [['approver-2', 'approver-2'], ...approvals.slice(1).map(() => ['approver-1', 'approver-1'])],
      )
    },
  },
  "change who reported an execution's success, recompute the hashes": {
    differences: 0,
    did: (t) =>
      assert.deepEqual(
        t.filter((e) => e.type === 'ExecutionSucceeded').map((e) => e.metadata.actor),
        ['executor-2', 'executor-1'],
      ),
  },
  'change who approved, recompute the hashes, re-decide and re-sign the verdicts': {
    differences: 0,
    did: (t) => {
      const cited = (ledger: readonly StoredEvent[]) =>
        ledger.filter((e) => e.type === 'VerdictIssued' && JSON.stringify(e.data).includes('approver-2'))
      assert.equal(cited(baseLedger).length, 0)
      assert.equal(cited(t).length, 1, 'the verdict the approval drew names the new approver, re-signed')
    },
  },
}

describe('the tamper table: the hash chain and replay --check miss it, a checkpoint kept before catches it', () => {
  it('the base ledger holds what the table tampers with, and passes both checks', async () => {
    for (const type of [
      'ApprovalGranted',
      'ExecutionSucceeded',
      'ExecutionFailed',
      'RollbackCompleted',
      'KillSwitchEngaged',
      'VerdictRevoked',
      'ExecutionRefused',
      'KillSwitchReleased',
    ])
      assert.ok(types(baseLedger).includes(type), type)
    const verify = await cli(['verify', '--json'], base)
    assert.equal(verify.code, 0, verify.stderr)
    assert.equal(verify.json.checked, baseLedger.length)
    const check = await cli(['replay', '--check', '--json'], base)
    assert.equal(check.code, 0, check.stdout)
    assert.ok(check.json.recorded > 10)
    // the service cut one checkpoint before the incident and one of the whole ledger as it stopped
    assert.deepEqual(
      kept.map((k) => k.size),
      [kept[0]?.size, baseLedger.length],
    )
    assert.ok((kept[0]?.size ?? 0) < baseLedger.findIndex((e) => e.type === 'KillSwitchEngaged') + 1)
    for (const answer of await againstKept(base)) {
      assert.equal(answer.code, 0, answer.stdout)
      assert.equal(answer.json.verdict, 'consistent')
    }
    assert.deepEqual(
      Object.keys(TODAY),
      TAMPERINGS.map((t) => t.name),
      'every row has its expectation',
    )
  })

  for (const [row, tampering] of TAMPERINGS.entries()) {
    it(tampering.name, async (t) => {
      const dir = await tamperedCopy(base, join(root, `row-${row + 1}`), tampering)
      const tampered = readLedger(dir)
      assert.equal(existsSync(join(dir, 'derived.db')), false, 'the derived state is gone')
      assert.notEqual(tampered.at(-1)?.hash, baseLedger.at(-1)?.hash, 'the head is another')
      TODAY[tampering.name]?.did(tampered)
      assertConsistent(dir, tampered)

      const verify = await cli(['verify', '--json'], dir)
      assert.equal(verify.code, 0, verify.stdout)
      assert.deepEqual(
        [verify.json.ok, verify.json.checked, verify.json.head.hash],
        [true, tampered.length, tampered.at(-1)?.hash],
      )

      // caught now: the checkpoint kept of the whole ledger refuses every row, and names what was done
      const answers = await againstKept(dir)
      assert.deepEqual(
        answers.map((a) => a.json.verdict),
        AGAINST_KEPT[tampering.name],
        answers.map((a) => a.stdout).join('\n'),
      )
      assert.deepEqual(
        answers.map((a) => a.code),
        AGAINST_KEPT[tampering.name]?.map((v) => (v === 'consistent' ? 0 : 1)),
      )

      const check = await cli(['replay', '--check', '--json'], dir)
      const expected = TODAY[tampering.name]?.differences
      t.diagnostic(`replay --check: ${check.json.differenceCount} differences`)
      if (expected === null) return
      assert.equal(check.json.differenceCount, expected, check.stdout)
      assert.equal(check.code, expected === 0 ? 0 : 1)
    })
  }
})
