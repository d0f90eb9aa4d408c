import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { compactVerify, createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose'
import { canonicalize } from '../domain/canonical.js'
import {
  FIELDS_ONLY_VERDICT_JWS_TYPE,
  keyIdOf,
  publicJwk,
  VERDICT_JWS_TYPE,
  type VerdictJwsType,
  verdictPayload,
  verdictSignatureProblem,
} from '../domain/signing.js'
import type { UnsignedVerdict } from './decide.js'

const base64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')

/** Signs verdicts with the service's Ed25519 key. Ed25519 is deterministic: replay reproduces each signature. */
export interface VerdictSigner {
  readonly keyId: string
  /**
   * A compact JWS over the verdict's fields and its registered claims; `typ` FIELDS_ONLY_VERDICT_JWS_TYPE
   * signs the fields alone, as verdicts were signed before the claims, for replay to compare those.
   */
  sign(verdict: UnsignedVerdict, typ?: VerdictJwsType): string
  jwks(): Promise<JSONWebKeySet>
}

export const createVerdictSigner = (privateKey: KeyObject): VerdictSigner => {
  const keyId = keyIdOf(privateKey, 'verdicts')
  const header = (typ: VerdictJwsType) => base64url(JSON.stringify({ alg: 'EdDSA', kid: keyId, typ }))
  const headers: Record<VerdictJwsType, string> = {
    [VERDICT_JWS_TYPE]: header(VERDICT_JWS_TYPE),
    [FIELDS_ONLY_VERDICT_JWS_TYPE]: header(FIELDS_ONLY_VERDICT_JWS_TYPE),
  }
  const jwk = publicJwk(privateKey, keyId) as JWK
  return {
    keyId,
    // a compact JWS built directly on node's Ed25519 (the same bytes jose would produce, without its async detour):
    // synchronous, so that verdicts are signed inside the group commit that appends them
    sign: (verdict, typ = VERDICT_JWS_TYPE) => {
      const signingInput = `${headers[typ]}.${base64url(verdictPayload(verdict, typ, canonicalize))}`
      return `${signingInput}.${sign(null, Buffer.from(signingInput), privateKey).toString('base64url')}`
    },
    jwks: async () => ({ keys: [jwk] }),
  }
}

/**
 * Checks a verdict's signature offline against a JWKS: a verdict `typ`, a verdict key, and a signed payload
 * that is exactly the verdict's other fields with the claims they give; returns the signed verdict, or throws.
 */
export const verifyVerdictSignature = async (
  verdict: UnsignedVerdict & { signature: string },
  jwks: JSONWebKeySet,
): Promise<UnsignedVerdict> => {
  const { signature, ...fields } = verdict
  const { payload, protectedHeader } = await compactVerify(signature, createLocalJWKSet(jwks), {
    algorithms: ['EdDSA'],
  })
  const problem = verdictSignatureProblem(protectedHeader, payload, fields)
  if (problem !== null) throw new Error(problem)
  return fields
}

export const generateSigningKey = (): KeyObject => generateKeyPairSync('ed25519').privateKey

/** Loads the service's signing key from a PEM file, creating it (mode 0600) on first start. */
export const loadOrCreateSigningKey = (path: string): { key: KeyObject; created: boolean } => {
  if (existsSync(path)) return { key: createPrivateKey(readFileSync(path)), created: false }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const key = generateSigningKey()
  writeFileSync(path, key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
  return { key, created: true }
}
