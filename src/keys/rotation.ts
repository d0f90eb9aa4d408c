import type { KeyObject } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { verifierKeyOf } from '../checkpoint/note.js'
import { type Config, checkpointOrigin } from '../config.js'
import { dataPaths } from '../data-folder.js'
import { generateSigningKey } from '../decision/signer.js'
import { keyIdOf } from '../domain/signing.js'
import { ed25519PrivateKey, KeyError } from './key-file.js'
import { type KeyList, type KeyUse, readKeyList, withCurrentKey, writeKeyList } from './key-list.js'

/** What a rotation did: the key that retired and the one that is current now, as the key list names them. */
export interface Rotation {
  readonly key: KeyUse
  readonly retired: string
  readonly current: string
  /** the file the new private key was written to */
  readonly path: string
  readonly tokensRevoked: boolean
}

/** Why this data folder cannot rotate a key (its owner rotates it where it is kept), or null. */
const keptElsewhere = (config: Config, use: KeyUse): string | null => {
  const owner = (setting: string, how: string) =>
    `the ${use} key is given by ${setting}, so it is rotated where it is kept, not here: ${how}, then restart the service; the start keeps the old public key in the key list`
  switch (use) {
    case 'verdict':
      return config.VERDICT_KEY_FILE === undefined
        ? null
        : owner('VERDICT_KEY_FILE', `write the new PEM key to ${config.VERDICT_KEY_FILE}`)
    case 'token':
      if (config.AUTH_MODE !== 'embedded')
        return `there is no token key to rotate: with AUTH_MODE=${config.AUTH_MODE} the identity provider signs the tokens`
      return config.TOKEN_KEY_FILE === undefined
        ? null
        : owner('TOKEN_KEY_FILE', `write the new PEM key to ${config.TOKEN_KEY_FILE}`)
    case 'checkpoint':
      if (config.CHECKPOINT_SIGN_COMMAND !== undefined)
        return owner(
          'CHECKPOINT_SIGN_COMMAND',
          'create the new key where the command signs (the KMS or HSM), set CHECKPOINT_VERIFIER_KEY to its public key',
        )
      return config.CHECKPOINT_KEY_FILE === undefined
        ? null
        : owner('CHECKPOINT_KEY_FILE', `write the new key to ${config.CHECKPOINT_KEY_FILE}`)
  }
}

const pathOf = (config: Config, use: KeyUse): string => {
  const paths = dataPaths(config)
  return use === 'verdict' ? paths.verdictKey : use === 'token' ? paths.tokenKey : paths.checkpointKey
}

/**
 * Rotates a key the data folder keeps: a new key becomes the current one, and the old one's public half stays
 * in the key list, retired (its private half is overwritten). With `tokensRevoked` (the token key only), the
 * tokens the old key signed are refused at once instead of living out their lifetime. The running service
 * signs with the old key until it restarts.
 */
export const rotateKey = (
  config: Config,
  use: KeyUse,
  { tokensRevoked = false, now = new Date() }: { tokensRevoked?: boolean; now?: Date } = {},
): Rotation => {
  const elsewhere = keptElsewhere(config, use)
  if (elsewhere) throw new KeyError(elsewhere)
  const path = pathOf(config, use)
  if (!existsSync(path))
    throw new KeyError(`no ${use} key at ${path}: start the service once on this data folder to create it`)
  const old = ed25519PrivateKey(readFileSync(path, 'utf8'), path)
  const fresh = generateSigningKey()
  const publicForm = (key: KeyObject) =>
    use === 'checkpoint' ? verifierKeyOf(checkpointOrigin(config), key) : key
  const listPath = dataPaths(config).keyList
  // the old key is recorded first, in case no start has recorded it yet
  let list: KeyList = withCurrentKey(readKeyList(listPath), use, publicForm(old), now)
  list = withCurrentKey(list, use, publicForm(fresh), now, { tokensRevoked })
  const next = `${path}.next`
  writeFileSync(next, fresh.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 })
  chmodSync(next, 0o600)
  // a crash between the two leaves the old key current: the next start makes it current in the list again
  writeKeyList(listPath, list)
  renameSync(next, path)
  const nameOf = (key: KeyObject) =>
    use === 'checkpoint'
      ? verifierKeyOf(checkpointOrigin(config), key)
      : keyIdOf(key, use === 'verdict' ? 'verdicts' : 'tokens')
  return {
    key: use,
    retired: nameOf(old),
    current: nameOf(fresh),
    path,
    tokensRevoked: tokensRevoked && use === 'token',
  }
}
