import type { KeyObject } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { z } from 'zod'
import { VerifierKeyText } from '../checkpoint/note.js'
import { keyIdOf, type PublicJwk, publicJwk } from '../domain/signing.js'
import { KeyError } from './key-file.js'

// The key list: every public key the service has signed with, per use, the current one and the retired ones,
// kept in DATA_DIR/keys/public-keys.json. Old verdicts and checkpoints are verified with the keys it keeps;
// a retired token key verifies the tokens it signed before it was retired, until they expire.

export const KEY_USES = ['verdict', 'token', 'checkpoint'] as const
export type KeyUse = (typeof KEY_USES)[number]

const Moment = z.iso.datetime({ offset: true })

const Jwk = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a base64url Ed25519 public key'),
  kid: z.string().min(1).max(100),
  alg: z.literal('EdDSA'),
  use: z.literal('sig'),
})

/** When a key became the current one of its use, and when it stopped being it (null: it still is). */
const Period = { since: Moment, retiredAt: Moment.nullable() }

const JwkEntry = z.strictObject({
  jwk: Jwk,
  ...Period,
  /** a retired token key whose tokens are refused at once, not only once they expire */
  tokensRevoked: z.literal(true).optional(),
})
export type JwkEntry = z.infer<typeof JwkEntry>

const CheckpointEntry = z.strictObject({ verifierKey: VerifierKeyText, ...Period })
export type CheckpointEntry = z.infer<typeof CheckpointEntry>

export const KeyList = z.strictObject({
  verdict: z.array(JwkEntry),
  token: z.array(JwkEntry),
  checkpoint: z.array(CheckpointEntry),
})
export type KeyList = z.infer<typeof KeyList>

export const emptyKeyList = (): KeyList => ({ verdict: [], token: [], checkpoint: [] })

/** The list kept in the data folder; an empty one when there is none yet. */
export const readKeyList = (path: string): KeyList => {
  if (!existsSync(path)) return emptyKeyList()
  let parsed: ReturnType<typeof KeyList.safeParse>
  try {
    parsed = KeyList.safeParse(JSON.parse(readFileSync(path, 'utf8')))
  } catch (error) {
    throw new KeyError(`${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new KeyError(
      `${path} is not a key list (${issue?.path.join('.')}: ${issue?.message}): restore it from a backup, it holds the public keys old verdicts and checkpoints are verified with`,
    )
  }
  return parsed.data
}

/** Writes the list whole or not at all (a new file renamed over the old one), readable by the service alone. */
export const writeKeyList = (path: string, list: KeyList): void => {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const next = `${path}.next`
  writeFileSync(next, `${JSON.stringify(KeyList.parse(list), null, 2)}\n`, { mode: 0o600 })
  chmodSync(next, 0o600)
  renameSync(next, path)
}

/** A verdict or token key as its entry names it. */
export const jwkOf = (use: 'verdict' | 'token', key: KeyObject): z.infer<typeof Jwk> =>
  Jwk.parse(publicJwk(key, keyIdOf(key, use === 'verdict' ? 'verdicts' : 'tokens')))

/** What tells one key from another in the list: the public key, or for checkpoints the verifier key. */
const idOf = (entry: JwkEntry | CheckpointEntry): string => ('jwk' in entry ? entry.jwk.x : entry.verifierKey)

/** The current key of a use: the one entry not retired. */
export const currentEntry = <U extends KeyUse>(list: KeyList, use: U): KeyList[U][number] | undefined =>
  (list[use] as KeyList[U][number][]).find((e) => e.retiredAt === null)

/**
 * The list with `key` as the current key of its use, the one before it retired now; with no current key of
 * that use for null. Unchanged when it is so already; a retired key that is current again (a key file put
 * back) is no longer retired.
 */
export const withCurrentKey = (
  list: KeyList,
  use: KeyUse,
  key: KeyObject | string | null,
  now: Date,
  options: { tokensRevoked?: boolean } = {},
): KeyList => {
  const since = now.toISOString()
  const entry: JwkEntry | CheckpointEntry | null =
    key === null
      ? null
      : use === 'checkpoint'
        ? { verifierKey: String(key), since, retiredAt: null }
        : { jwk: jwkOf(use, key as KeyObject), since, retiredAt: null }
  const id = entry === null ? null : idOf(entry)
  const entries = list[use] as (JwkEntry | CheckpointEntry)[]
  const current = entries.find((e) => e.retiredAt === null)
  if ((current === undefined && id === null) || (current !== undefined && idOf(current) === id)) return list
  const retired = entries
    .filter((e) => idOf(e) !== id)
    .map((e) =>
      e.retiredAt !== null
        ? e
        : {
            ...e,
            retiredAt: since,
            ...(options.tokensRevoked && use === 'token' ? { tokensRevoked: true as const } : {}),
          },
    )
  return { ...list, [use]: entry === null ? retired : [...retired, entry] }
}

/**
 * The JWKS the service publishes: every verdict key it has signed with, the current one first, so that every
 * verdict in the ledger stays verifiable; and the token keys whose tokens may still be alive: the current
 * one, and each retired one (its tokens not revoked) for a token lifetime after its retirement.
 */
export const jwksOf = (list: KeyList, now: Date, maxTokenLifetimeSeconds: number): { keys: PublicJwk[] } => {
  // the current key was added last, each retired one before it
  const newestFirst = (entries: readonly JwkEntry[]) => [...entries].reverse()
  const alive = (e: JwkEntry) =>
    e.retiredAt === null ||
    (!e.tokensRevoked && Date.parse(e.retiredAt) + maxTokenLifetimeSeconds * 1000 > now.getTime())
  return {
    keys: [...newestFirst(list.verdict), ...newestFirst(list.token).filter(alive)].map((e) => e.jwk),
  }
}

/** Every verdict key the service has signed with: each verdict in the ledger verifies with one of them. */
export const verdictJwks = (list: KeyList): { keys: PublicJwk[] } => ({
  keys: list.verdict.map((e) => e.jwk),
})

/** The retired token keys whose tokens are still taken, by kid, with the moment (in seconds) they were retired. */
export const retiredTokenKeys = (list: KeyList): Map<string, { jwk: PublicJwk; retiredAt: number }> =>
  new Map(
    list.token.flatMap((e) =>
      e.retiredAt === null || e.tokensRevoked
        ? []
        : [[e.jwk.kid, { jwk: e.jwk, retiredAt: Math.floor(Date.parse(e.retiredAt) / 1000) }] as const],
    ),
  )

/** Every checkpoint verifier key the service has signed with: an old checkpoint verifies with one of them. */
export const checkpointVerifierKeys = (list: KeyList): string[] => list.checkpoint.map((e) => e.verifierKey)
