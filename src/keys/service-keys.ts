import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ed25519PublicKey, type NoteSigner, parseVerifierKey } from '../checkpoint/note.js'
import { checkpointSigner } from '../checkpoint/signer.js'
import type { Config } from '../config.js'
import { dataPaths } from '../data-folder.js'
import { loadOrCreateSigningKey } from '../decision/signer.js'
import { ed25519PrivateKey, KeyError, readKeyFile } from './key-file.js'
import { type KeyList, readKeyList, withCurrentKey, writeKeyList } from './key-list.js'

/** The keys the service signs with, and the list of every public key it has signed with. */
export interface ServiceKeys {
  readonly verdict: KeyObject
  /** the embedded token key; null unless AUTH_MODE=embedded */
  readonly token: KeyObject | null
  readonly checkpoint: NoteSigner
  /** the key list, the current keys in it */
  readonly list: KeyList
  /** whether the verdict or the token key was created in DATA_DIR now: the data folder's first start */
  readonly created: boolean
}

/** A key the service keeps in DATA_DIR/keys (created on first start), or the one a setting names. */
const keyFrom = (
  setting: string,
  file: string | undefined,
  own: string,
): { key: KeyObject; created: boolean } =>
  file === undefined
    ? loadOrCreateSigningKey(own)
    : { key: ed25519PrivateKey(readKeyFile(file, setting), setting), created: false }

export const verdictKey = (config: Config) =>
  keyFrom('VERDICT_KEY_FILE', config.VERDICT_KEY_FILE, dataPaths(config).verdictKey)

export const tokenKey = (config: Config) =>
  keyFrom('TOKEN_KEY_FILE', config.TOKEN_KEY_FILE, dataPaths(config).tokenKey)

/** Where a key comes from, in the words of the configuration. */
const sourceOf = (config: Config, use: 'verdict' | 'token' | 'checkpoint'): string => {
  switch (use) {
    case 'verdict':
      return config.VERDICT_KEY_FILE === undefined ? 'keys/verdict-signing.pem' : 'VERDICT_KEY_FILE'
    case 'token':
      return config.TOKEN_KEY_FILE === undefined ? 'keys/token-signing.pem' : 'TOKEN_KEY_FILE'
    case 'checkpoint':
      return config.CHECKPOINT_SIGN_COMMAND !== undefined
        ? 'CHECKPOINT_VERIFIER_KEY'
        : config.CHECKPOINT_KEY_FILE === undefined
          ? 'keys/checkpoint-signing.pem'
          : 'CHECKPOINT_KEY_FILE'
  }
}

const spki = (key: KeyObject): string =>
  (key.type === 'public' ? key : createPublicKey(key))
    .export({ format: 'der', type: 'spki' })
    .toString('base64')

/**
 * Refuses one key for two uses: a stolen key must forge one kind of record, not two. The token issuer's
 * public key (AUTH_MODE=key-file) is compared too.
 */
export const requireDistinctKeys = (
  config: Config,
  keys: { verdict: KeyObject; token: KeyObject | null; checkpoint: NoteSigner },
): void => {
  const named: [string, string][] = [
    [`the verdict key (${sourceOf(config, 'verdict')})`, spki(keys.verdict)],
    [
      `the checkpoint key (${sourceOf(config, 'checkpoint')})`,
      spki(ed25519PublicKey(parseVerifierKey(keys.checkpoint.verifierKey).publicKey)),
    ],
  ]
  if (keys.token) named.push([`the token key (${sourceOf(config, 'token')})`, spki(keys.token)])
  if (config.AUTH_MODE === 'key-file')
    named.push([
      'the token issuer key (AUTH_PUBLIC_KEY_FILE)',
      spki(createPublicKey(readFileSync(String(config.AUTH_PUBLIC_KEY_FILE)))),
    ])
  for (const [i, [name, key]] of named.entries()) {
    const same = named.slice(0, i).find(([, other]) => other === key)
    if (same)
      throw new KeyError(
        `${same[0]} and ${name} are the same key: each key signs one kind of record only, so that whoever holds one cannot forge the others`,
      )
  }
}

/**
 * Opens the service's keys (creating those it keeps in DATA_DIR on first start), refuses one key for two
 * uses, and records the current keys in the key list: a key replaced since the last start (a key file
 * rotated by its owner, another CHECKPOINT_VERIFIER_KEY, another origin) is kept there as retired.
 */
export const openServiceKeys = (config: Config, now: Date = new Date()): ServiceKeys => {
  const verdict = verdictKey(config)
  const token = config.AUTH_MODE === 'embedded' ? tokenKey(config) : null
  const checkpoint = checkpointSigner(config)
  requireDistinctKeys(config, { verdict: verdict.key, token: token?.key ?? null, checkpoint })
  const path = dataPaths(config).keyList
  const before = readKeyList(path)
  let list = withCurrentKey(before, 'verdict', verdict.key, now)
  // no token key signs while AUTH_MODE is not embedded: none is published as current
  list = token ? withCurrentKey(list, 'token', token.key, now) : withCurrentKey(list, 'token', null, now)
  list = withCurrentKey(list, 'checkpoint', checkpoint.verifierKey, now)
  if (list !== before) writeKeyList(path, list)
  return {
    verdict: verdict.key,
    token: token?.key ?? null,
    checkpoint,
    list,
    created: verdict.created || (token?.created ?? false),
  }
}
