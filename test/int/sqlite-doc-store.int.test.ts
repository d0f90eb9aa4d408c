import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { docStoreContract } from '../contract/doc-store.contract.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docs-sqlite-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshPath = () => path.join(dir, `docs-${++files}.db`)

docStoreContract('sqlite', () => openSqliteDocStore(freshPath()))

describe('SQLite DocStore on a real file', () => {
  it('keeps documents and checkpoints across a reopen', () => {
    const file = freshPath()
    const first = openSqliteDocStore(file)
    first.commit(
      'authority',
      new Map<string, unknown>([
        ['agent-a', { level: 'execute' }],
        ['agent-b', { level: 'observe' }],
      ]),
      41,
    )
    first.commit('authority', new Map([['agent-b', null]]), 42)
    const dump = first.dump('authority')
    first.close()
    const second = openSqliteDocStore(file)
    assert.deepEqual(second.dump('authority'), dump)
    assert.deepEqual(second.get('authority', 'agent-a'), { level: 'execute' })
    assert.equal(second.get('authority', 'agent-b'), undefined)
    assert.equal(second.checkpoint('authority'), 42)
    second.close()
  })

  it('runs in WAL mode', () => {
    const file = freshPath()
    openSqliteDocStore(file).close()
    const raw = new Database(file, { readonly: true })
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal')
    raw.close()
  })
})
