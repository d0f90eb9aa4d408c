import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { Config } from './config.js'

/** The files the service keeps in its data folder. */
export const dataPaths = (config: Pick<Config, 'DATA_DIR'>) => ({
  ledger: join(config.DATA_DIR, 'ledger.db'),
  derived: join(config.DATA_DIR, 'derived.db'),
  /** the keys the service creates, unless a setting names a key kept elsewhere */
  verdictKey: join(config.DATA_DIR, 'keys', 'verdict-signing.pem'),
  tokenKey: join(config.DATA_DIR, 'keys', 'token-signing.pem'),
  checkpointKey: join(config.DATA_DIR, 'keys', 'checkpoint-signing.pem'),
  /** every public key the service has signed with, current and retired */
  keyList: join(config.DATA_DIR, 'keys', 'public-keys.json'),
  /** the first start's admin token, written once */
  bootstrapToken: join(config.DATA_DIR, 'bootstrap-admin.token'),
})

/** SQLite's companions of a database file, which hold its latest writes. */
const SQLITE_COMPANIONS = ['-wal', '-shm', '-journal'] as const

export class DataFolderError extends Error {
  override readonly name = 'DataFolderError'
}

const ownerOf = (path: string): string => {
  const uid = statSync(path).uid
  const self = process.getuid?.()
  return self === undefined || uid === self
    ? ''
    : ` (it belongs to uid ${uid}, the service runs as uid ${self})`
}

/** Sets the mode, or says in one sentence why it cannot be set. */
const tighten = (path: string, mode: number, kind: 'folder' | 'file'): void => {
  const stat = statSync(path)
  if (kind === 'folder' ? !stat.isDirectory() : !stat.isFile())
    throw new DataFolderError(`the data folder cannot be secured: ${path} is not a ${kind}`)
  if ((stat.mode & 0o777) === mode) return
  try {
    chmodSync(path, mode)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new DataFolderError(
      `the data folder cannot be secured: chmod ${mode.toString(8)} ${path} failed with ${code}${ownerOf(path)}`,
    )
  }
}

/**
 * Makes the data folder private to the service's user before anything opens it: the folder and the folders of
 * its files 0700, its files (and their SQLite companions) 0600. The databases this start opens are created
 * empty at 0600 first, so SQLite creates their -wal and -shm files with that mode too. Throws a
 * DataFolderError naming the path and the reason when a mode cannot be set.
 */
export const secureDataFolder = (
  folder: string,
  files: readonly string[],
  databases: readonly string[],
): void => {
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new DataFolderError(`the data folder ${folder} cannot be created: ${code}`)
  }
  tighten(folder, 0o700, 'folder')
  for (const file of files) {
    const parent = dirname(file)
    if (resolve(parent) !== resolve(folder) && existsSync(parent)) tighten(parent, 0o700, 'folder')
    const copies = file.endsWith('.db') ? [file, ...SQLITE_COMPANIONS.map((s) => `${file}${s}`)] : [file]
    if (databases.includes(file) && !existsSync(file)) closeSync(openSync(file, 'a', 0o600))
    for (const path of copies) if (existsSync(path)) tighten(path, 0o600, 'file')
  }
}
