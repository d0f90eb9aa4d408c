import { createPublicKey, type KeyObject } from 'node:crypto'
import { canonicalizeRecorded, sha256Hex } from './canonical.js'
import type { DataOf } from './events.js'

// What the service signs, verdicts and tokens, and how the two are told apart: each by its own key (and key
// id), its own `typ` and its own issuer, so that a verdict never verifies as a token nor a token as a verdict.

/** A verdict's JWS `typ`: its payload is the verdict's fields with the registered JWT claims. */
export const VERDICT_JWS_TYPE = 'verdict+jwt'
/** The `typ` of verdicts signed before the registered claims were added: their payload is the fields alone. */
export const FIELDS_ONLY_VERDICT_JWS_TYPE = 'verdict+jws'
export type VerdictJwsType = typeof VERDICT_JWS_TYPE | typeof FIELDS_ONLY_VERDICT_JWS_TYPE

export const isVerdictJwsType = (typ: unknown): typ is VerdictJwsType =>
  typ === VERDICT_JWS_TYPE || typ === FIELDS_ONLY_VERDICT_JWS_TYPE

/** The `iss` of every verdict: the decision service, the actor its answers are recorded under. */
export const VERDICT_ISSUER = 'governance-ledger/decision'

/** A verdict's fields: everything it signs but its registered claims. */
export type VerdictFields = Omit<DataOf<'VerdictIssued'>, 'signature'>

/** The registered JWT claims of a verdict, each derived from its fields, so replay signs them alike. */
export interface VerdictClaims {
  readonly iss: typeof VERDICT_ISSUER
  /** the proposal it decides */
  readonly sub: string
  /** the identity the action runs as: the only one an executor may run it as */
  readonly aud: string
  /** decidedAt, in seconds (rounded down) */
  readonly iat: number
  /** expiresAt, in seconds (rounded down: a standard library stops accepting it up to a second early) */
  readonly exp: number
  readonly jti: string
}

const seconds = (timestamp: string): number => Math.floor(Date.parse(timestamp) / 1000)

export const verdictClaims = (
  v: Pick<VerdictFields, 'verdictId' | 'proposalId' | 'executingIdentity' | 'decidedAt' | 'expiresAt'>,
): VerdictClaims => ({
  iss: VERDICT_ISSUER,
  sub: v.proposalId,
  aud: v.executingIdentity,
  iat: seconds(v.decidedAt),
  exp: seconds(v.expiresAt),
  jti: v.verdictId,
})

/**
 * The text a verdict's JWS signs, in the form its `typ` names: the canonical JSON (RFC 8785) of the verdict's
 * fields and its registered claims, or of the fields alone for a verdict recorded before the claims.
 */
export const verdictPayload = (
  fields: VerdictFields,
  typ: VerdictJwsType,
  canonical: (value: unknown) => string,
): string => canonical(typ === VERDICT_JWS_TYPE ? { ...fields, ...verdictClaims(fields) } : fields)

/** The `typ` a compact JWS's protected header names, read without verifying it; undefined if there is none. */
export const jwsTypeOf = (jws: string): unknown => {
  try {
    const header: unknown = JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8'))
    return typeof header === 'object' && header !== null ? (header as { typ?: unknown }).typ : undefined
  } catch {
    return undefined
  }
}

/** A verdict key's id is `ed25519-` and 16 hex digits of its hash; a token key's starts with `token-`. */
const VERDICT_KEY_ID = /^ed25519-[0-9a-f]{16}$/
const TOKEN_KEY_ID_PREFIX = 'token-'

export const isVerdictKeyId = (kid: unknown): boolean => typeof kid === 'string' && VERDICT_KEY_ID.test(kid)

/** The key id of one of the service's Ed25519 keys (private or public), named for what it signs. */
export const keyIdOf = (key: KeyObject, signs: 'verdicts' | 'tokens'): string => {
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
  const id = `ed25519-${sha256Hex(spki.toString('base64')).slice(0, 16)}`
  return signs === 'verdicts' ? id : `${TOKEN_KEY_ID_PREFIX}${id}`
}

/** A public key as a JWKS entry: never the private part. */
export interface PublicJwk {
  readonly kty: string
  readonly crv?: string
  readonly x?: string
  readonly kid: string
  readonly alg: 'EdDSA'
  readonly use: 'sig'
}

export const publicJwk = (key: KeyObject, kid: string): PublicJwk => {
  const { kty, crv, x } = createPublicKey(key).export({ format: 'jwk' })
  return { kty: String(kty), crv, x, kid, alg: 'EdDSA', use: 'sig' }
}

/**
 * Why a verified JWS is not the signature of exactly these verdict fields, or null: it must be of a verdict
 * `typ`, signed with a verdict key, over the payload that `typ` names, claims included.
 */
export const verdictSignatureProblem = (
  header: { readonly typ?: unknown; readonly kid?: unknown },
  payload: Uint8Array,
  fields: VerdictFields,
): string | null => {
  if (!isVerdictJwsType(header.typ)) return `the signature is of type ${String(header.typ)}, not a verdict`
  if (!isVerdictKeyId(header.kid)) return `the signature names key ${String(header.kid)}, not a verdict key`
  if (new TextDecoder().decode(payload) !== verdictPayload(fields, header.typ, canonicalizeRecorded))
    return 'the signed payload is not this verdict: a field or claim differs from what was signed'
  return null
}
