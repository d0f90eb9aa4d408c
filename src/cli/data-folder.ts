import { existsSync } from 'node:fs'
import { type Config, loadConfig } from '../config.js'
import { createVerdictSigner, type VerdictSigner } from '../decision/signer.js'
import { verdictKey } from '../keys/service-keys.js'
import { dataPaths, openRuntime, type Views } from '../runtime.js'
import { CliError } from './errors.js'
import { ReadOnlyLedger } from './read-only-ledger.js'

export type OfflineRuntime = Awaited<ReturnType<typeof openRuntime>>

/** The service's configuration, from the same environment, with --data-dir taking DATA_DIR's place. */
export const configFor = (env: NodeJS.ProcessEnv, dataDir: string | undefined): Config =>
  loadConfig(dataDir === undefined ? env : { ...env, DATA_DIR: dataDir })

/** A read command on a folder with no ledger would create an empty one: refuse instead. */
export const requireLedger = (config: Config): string => {
  if (config.LEDGER !== 'sqlite') {
    throw new CliError(
      `this command reads the embedded SQLite ledger; with LEDGER=${config.LEDGER} use the HTTP API`,
    )
  }
  const path = dataPaths(config).ledger
  if (!existsSync(path))
    throw new CliError(
      `no ledger in ${config.DATA_DIR}: set DATA_DIR or --data-dir to the service's data folder`,
    )
  return path
}

export const openReadOnlyLedger = (config: Config): ReadOnlyLedger =>
  new ReadOnlyLedger(requireLedger(config))

/** The service's verdict key (VERDICT_KEY_FILE, or the data folder's), never created here: replay must sign exactly as the service did. */
export const loadVerdictSigner = (config: Config): VerdictSigner => {
  const path = dataPaths(config).verdictKey
  if (config.VERDICT_KEY_FILE === undefined && !existsSync(path))
    throw new CliError(`no verdict signing key at ${path}: is this the service's data folder?`)
  return createVerdictSigner(verdictKey(config).key)
}

/**
 * Opens the data folder as the service does, brings the named read models up to date with the ledger,
 * runs the read, and closes everything whatever happens.
 */
export const withViews = async <T>(
  config: Config,
  names: readonly (keyof Views)[],
  read: (runtime: OfflineRuntime) => Promise<T> | T,
): Promise<T> => {
  if (config.LEDGER === 'sqlite') requireLedger(config)
  const runtime = await openRuntime(config)
  try {
    for (const name of names) await runtime.views[name].catchUp()
    return await read(runtime)
  } finally {
    await runtime.closeStores()
  }
}
