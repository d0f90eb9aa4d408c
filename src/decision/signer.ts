import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { compactVerify, createLocalJWKSet, exportJWK, type JSONWebKeySet, type JWK } from 'jose'
import { canonicalize, canonicalizeRecorded, sha256Hex } from '../domain/canonical.js'
import type { UnsignedVerdict } from './decide.js'

export const VERDICT_JWS_TYPE = 'verdict+jws'

const base64url = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')

/** Signs verdicts with the service's Ed25519 key. Ed25519 is deterministic: replay reproduces each signature. */
export interface VerdictSigner {
  readonly keyId: string
  sign(verdict: UnsignedVerdict): Promise<string>
  jwks(): Promise<JSONWebKeySet>
}

export const createVerdictSigner = (privateKey: KeyObject): VerdictSigner => {
  const publicKey = createPublicKey(privateKey)
  const raw = publicKey.export({ format: 'der', type: 'spki' })
  const keyId = `ed25519-${sha256Hex(raw.toString('base64')).slice(0, 16)}`
  const header = base64url(JSON.stringify({ alg: 'EdDSA', kid: keyId, typ: VERDICT_JWS_TYPE }))
  return {
    keyId,
    // a compact JWS built directly on node's Ed25519 (the same bytes jose would produce, without its async detour)
    sign: async (verdict) => {
      const signingInput = `${header}.${base64url(canonicalize(verdict))}`
      return `${signingInput}.${sign(null, Buffer.from(signingInput), privateKey).toString('base64url')}`
    },
    jwks: async () => ({
      keys: [{ ...(await exportJWK(publicKey)), kid: keyId, alg: 'EdDSA', use: 'sig' } as JWK],
    }),
  }
}

/**
 * Checks a verdict's signature offline against a JWKS and that the signed payload is exactly the verdict's
 * other fields; returns the signed verdict, or throws.
 */
export const verifyVerdictSignature = async (
  verdict: UnsignedVerdict & { signature: string },
  jwks: JSONWebKeySet,
): Promise<UnsignedVerdict> => {
  const { signature, ...fields } = verdict
  const { payload, protectedHeader } = await compactVerify(signature, createLocalJWKSet(jwks), {
    algorithms: ['EdDSA'],
  })
  if (protectedHeader.typ !== VERDICT_JWS_TYPE)
    throw new Error(`unexpected JWS type ${String(protectedHeader.typ)}`)
  if (new TextDecoder().decode(payload) !== canonicalizeRecorded(fields))
    throw new Error('the signed payload is not this verdict')
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
