import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config.js'
import { DataFolderError, secureDataFolder } from '../../src/data-folder.js'
import { dataPaths, openRuntime } from '../../src/runtime.js'

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'data-folder-'))
after(() => rmSync(root, { recursive: true, force: true }))

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8)

/** Every folder and file under `dir`, with its mode. */
const modes = (dir: string): Record<string, string> => {
  const found: Record<string, string> = { '.': modeOf(dir) }
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' }))
    found[entry] = modeOf(join(dir, entry))
  return found
}

const open = async (dir: string) => {
  const runtime = await openRuntime(loadConfig({ DATA_DIR: dir, AUTH_MODE: 'embedded' }))
  return runtime
}

describe('the data folder', () => {
  test('a new data folder is 0700 and every file in it 0600, the SQLite -wal and -shm files included', async () => {
    const dir = join(root, 'fresh')
    const runtime = await open(dir)
    try {
      const found = modes(dir)
      console.log(`a fresh data folder: ${JSON.stringify(found)}`)
      assert.ok(found['ledger.db-wal'] !== undefined, 'the ledger runs in WAL mode, so the file is there')
      for (const [entry, mode] of Object.entries(found))
        assert.equal(mode, statSync(join(dir, entry)).isDirectory() ? '700' : '600', entry)
    } finally {
      await runtime.closeStores()
    }
  })

  test('a folder left at 0755 with a world-readable ledger is tightened to 0700/0600 at start', async () => {
    const dir = join(root, 'loose')
    await (await open(dir)).closeStores()
    const paths = dataPaths(loadConfig({ DATA_DIR: dir }))
    writeFileSync(paths.bootstrapToken, 'a token\n')
    chmodSync(dir, 0o755)
    chmodSync(join(dir, 'keys'), 0o755)
    for (const file of [paths.ledger, paths.derived, paths.verdictKey, paths.tokenKey, paths.bootstrapToken])
      chmodSync(file, 0o644)
    assert.deepEqual([modeOf(dir), modeOf(paths.ledger)], ['755', '644'])
    const runtime = await open(dir)
    try {
      const found = modes(dir)
      for (const [entry, mode] of Object.entries(found))
        assert.equal(mode, statSync(join(dir, entry)).isDirectory() ? '700' : '600', entry)
      assert.deepEqual([found['.'], found['ledger.db'], found.keys], ['700', '600', '700'])
    } finally {
      await runtime.closeStores()
    }
  })

  test('the derived.db that replaces a corrupted one is created 0600 as well', async () => {
    const dir = join(root, 'corrupted')
    await (await open(dir)).closeStores()
    const derived = dataPaths(loadConfig({ DATA_DIR: dir })).derived
    for (const journal of ['-wal', '-shm']) rmSync(`${derived}${journal}`, { force: true })
    writeFileSync(derived, 'not a database at all, and readable by everyone')
    chmodSync(derived, 0o644)
    const runtime = await open(dir)
    try {
      assert.deepEqual(
        runtime.setAside.map((a) => a.reason),
        ['derived.db was not a SQLite database'],
        'the corrupted file was set aside',
      )
      assert.equal(modeOf(derived), '600')
    } finally {
      await runtime.closeStores()
    }
  })

  test('a folder whose mode cannot be set stops the start, naming the path and the reason', async (t) => {
    // a folder of the kernel's, whose mode no user may change
    if (!existsSync('/proc/1')) {
      console.log('SKIPPED: no /proc/1 on this system to stand for a folder whose mode cannot be set')
      t.skip('no /proc/1')
      return
    }
    assert.throws(
      () => secureDataFolder('/proc/1', [], []),
      (error: unknown) =>
        error instanceof DataFolderError &&
        /the data folder cannot be secured: chmod 700 \/proc\/1 failed with EPERM/.test(error.message),
    )
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: '/proc/1', PORT: '0', LOG_LEVEL: 'silent' },
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise<number | null>((done) => child.on('exit', done))
    assert.equal(code, 1, stderr)
    assert.match(
      stderr,
      /^governance-ledger: the data folder cannot be secured: chmod 700 \/proc\/1 failed with EPERM/,
    )
  })

  test('what is in the place of the folder or of a file of it stops the start, saying what', () => {
    const file = join(root, 'a-file')
    writeFileSync(file, '')
    assert.throws(() => secureDataFolder(file, [], []), /the data folder .*a-file cannot be created: EEXIST/)
    const dir = join(root, 'odd')
    mkdirSync(join(dir, 'ledger.db'), { recursive: true })
    assert.throws(
      () => secureDataFolder(dir, [join(dir, 'ledger.db')], []),
      /the data folder cannot be secured: .*ledger\.db is not a file/,
    )
  })
})
