import { compactVerify, createLocalJWKSet, errors, type JSONWebKeySet } from 'jose'
import { z } from 'zod'
import { type ActionIdentity, actionDigestOf } from '../domain/canonical.js'
import { VerdictIssued } from '../domain/events.js'
import { verdictSignatureProblem } from '../domain/signing.js'
import type { Verdict } from './types.js'

export { VERDICT_ISSUER, VERDICT_JWS_TYPE } from '../domain/signing.js'

/** What an executor must find true of a verdict before it runs anything. */
export interface VerdictExpectations {
  /**
   * the whole action the caller is about to run: the proposal, tool, action, resource, environment, the
   * identity it runs as, and the plan; the verdict must name every one of them
   */
  readonly action: ActionIdentity
  /** the resource version the caller sees now, when it knows it */
  readonly resourceVersion?: string
}

/** Why a verdict was refused; each names the one thing that failed first. */
export type RefusalReason =
  | 'malformed'
  | 'signature'
  | 'not-allowed'
  | 'expired'
  | 'action-mismatch'
  | 'plan-mismatch'
  | 'resource-mismatch'
  | 'unknown-proposal'
  | 'not-open'
  | 'superseded'
  | 'revoked'

export type Verification =
  | { readonly ok: true; readonly verdict: Verdict }
  | { readonly ok: false; readonly reason: RefusalReason; readonly message: string }

export const refuse = (reason: RefusalReason, message: string): Verification => ({
  ok: false,
  reason,
  message,
})

// the signed fields only: a verdict view's position, revoked and expired are not part of the signature
const SignedVerdict = z.object(VerdictIssued.shape.data.shape)

/** Thrown when no key of the JWKS has the verdict's key id, so the caller can fetch the keys again. */
export class UnknownSigningKeyError extends Error {
  override readonly name = 'UnknownSigningKeyError'
}

/**
 * The shape and the signature alone: the service signed exactly this verdict, whatever it says, with its verdict
 * key (a token key of the same JWKS does not do) under a verdict `typ`, and the claims agree with the fields.
 */
export const verifyVerdictSignature = async (
  candidate: unknown,
  jwks: JSONWebKeySet,
): Promise<Verification> => {
  const parsed = SignedVerdict.safeParse(candidate)
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => i.path.join('.') || '(verdict)').join(', ')
    return refuse('malformed', `the verdict does not have the verdict shape: ${fields}`)
  }
  const verdict = parsed.data
  const { signature, ...signed } = verdict
  try {
    const { payload, protectedHeader } = await compactVerify(signature, createLocalJWKSet(jwks), {
      algorithms: ['EdDSA'],
    })
    const problem = verdictSignatureProblem(protectedHeader, payload, signed)
    if (problem !== null) return refuse('signature', problem)
  } catch (error) {
    if (error instanceof errors.JWKSNoMatchingKey) throw new UnknownSigningKeyError(error.message)
    const code = error instanceof errors.JOSEError ? error.code : String(error)
    return refuse('signature', `the signature does not verify against the service's keys (${code})`)
  }
  return { ok: true, verdict }
}

/** The fields of the action a verdict names, in the order a mismatch is reported. */
const ACTION_FIELDS = [
  'proposalId',
  'tool',
  'action',
  'resource',
  'environment',
  'executingIdentity',
] as const

/**
 * The checks an executor can make without asking the service: shape, signature (and that the signed payload
 * is exactly this verdict), decision, expiry at `now`, the whole action it is bound to (every field, and the
 * digest over them and the plan), and the resource version.
 */
export const verifyVerdictOffline = async (
  candidate: unknown,
  jwks: JSONWebKeySet,
  expected: VerdictExpectations,
  now: Date = new Date(),
): Promise<Verification> => {
  const signed = await verifyVerdictSignature(candidate, jwks)
  if (!signed.ok) return signed
  const { verdict } = signed
  if (verdict.decision !== 'allow') {
    const failed = verdict.checks.filter((c) => c.status === 'fail').map((c) => c.check)
    return refuse('not-allowed', `the verdict is a block (failed: ${failed.join(', ') || 'none listed'})`)
  }
  if (Date.parse(verdict.expiresAt) <= now.getTime()) {
    return refuse('expired', `the verdict expired at ${verdict.expiresAt}`)
  }
  for (const field of ACTION_FIELDS) {
    if (verdict[field] !== expected.action[field]) {
      return refuse(
        'action-mismatch',
        `the verdict allows ${field} ${verdict[field]}, not ${expected.action[field]}, the one about to run`,
      )
    }
  }
  const digest = actionDigestOf(expected.action)
  if (verdict.actionDigest !== digest) {
    return refuse(
      'plan-mismatch',
      `the verdict allows action ${verdict.actionDigest}, not the plan about to run (${digest})`,
    )
  }
  if (expected.resourceVersion !== undefined && verdict.resourceVersion !== expected.resourceVersion) {
    return refuse(
      'resource-mismatch',
      `the verdict is bound to resource version ${String(verdict.resourceVersion)}, but it is now ${expected.resourceVersion}`,
    )
  }
  return { ok: true, verdict }
}
