import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { JSONWebKeySet } from 'jose'
import { CompactSign } from 'jose'
import { tokenKeyJwk } from '../../src/auth/tokens.js'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import { createVerdictSigner, generateSigningKey } from '../../src/decision/signer.js'
import { canonicalize } from '../../src/domain/canonical.js'
import { FIELDS_ONLY_VERDICT_JWS_TYPE, verdictClaims } from '../../src/domain/signing.js'
import {
  type ActionIdentity,
  actionDigestOf,
  planHashOf,
  VERDICT_JWS_TYPE,
  type Verdict,
  verifyVerdictOffline,
  verifyVerdictSignature,
} from '../../src/sdk/index.js'
import { UnknownSigningKeyError } from '../../src/sdk/verify.js'

const NOW = new Date('2025-06-01T12:00:00.000Z')
const PLAN = { replicas: 3, strategy: 'rolling' }
const PLAN_HASH = planHashOf(PLAN)
/** The action the verdict allows: scaling deployment/web-a, as svc-deployer. */
const ACTION: ActionIdentity = {
  proposalId: 'proposal-1',
  tool: 'kubectl',
  action: 'scale',
  resource: 'deployment/web-a',
  environment: 'production',
  executingIdentity: 'svc-deployer',
  plan: PLAN,
}

const unsigned = (overrides: Partial<UnsignedVerdict> = {}): UnsignedVerdict => ({
  verdictId: '01890a5d-ac96-774b-bcce-b302099a8057',
  proposalId: 'proposal-1',
  revision: 2,
  decision: 'allow',
  checks: [{ check: 'authority', status: 'pass', reason: "agent a1 holds 'execute' in production" }],
  agentId: 'a1',
  executingIdentity: ACTION.executingIdentity,
  tool: ACTION.tool,
  action: ACTION.action,
  resource: ACTION.resource,
  environment: ACTION.environment,
  impact: 'high',
  planHash: PLAN_HASH,
  actionDigest: actionDigestOf(ACTION),
  resourceVersion: 'v7',
  policyVersion: 1,
  decidedAt: '2025-06-01T11:59:00.000Z',
  expiresAt: '2025-06-01T12:09:00.000Z',
  supersedes: null,
  basedOnEventId: '01890a5d-ac96-774b-bcce-b302099a8058',
  ...overrides,
})

const signer = createVerdictSigner(generateSigningKey())
const signed = async (overrides: Partial<UnsignedVerdict> = {}): Promise<Verdict> => {
  const verdict = unsigned(overrides)
  return { ...verdict, signature: await signer.sign(verdict) }
}
const keys = async (): Promise<JSONWebKeySet> => signer.jwks()
const expected = { action: ACTION }
const reasonOf = (result: { ok: boolean; reason?: string }) => (result.ok ? null : result.reason)

describe('verifying a verdict signature alone (shape and signature)', () => {
  it('accepts any genuine verdict, whatever it decides, however old, for whatever action', async () => {
    for (const verdict of [
      await signed(),
      await signed({ decision: 'block' }),
      await signed({ expiresAt: '2000-01-01T00:00:00.000Z', resource: 'database/payments-primary' }),
    ]) {
      const result = await verifyVerdictSignature({ ...verdict, position: 3, revoked: true }, await keys())
      assert.equal(result.ok, true)
      assert.deepEqual(result.ok && result.verdict, verdict)
    }
  })

  it('refuses a field changed after signing, a malformed verdict, and throws for an unknown key', async () => {
    const verdict = await signed()
    const changed = await verifyVerdictSignature({ ...verdict, resource: 'database/x' }, await keys())
    assert.equal(reasonOf(changed), 'signature')
    const { actionDigest: _digest, ...noDigest } = verdict
    const malformed = await verifyVerdictSignature(noDigest, await keys())
    assert.equal(reasonOf(malformed), 'malformed')
    assert.match(malformed.ok ? '' : malformed.message, /actionDigest/)
    const other = createVerdictSigner(generateSigningKey())
    const forged = { ...unsigned(), signature: await other.sign(unsigned()) }
    await assert.rejects(verifyVerdictSignature(forged, await keys()), UnknownSigningKeyError)
  })
})

describe('verifying a verdict offline (signature, decision, expiry, action, plan, resource version)', () => {
  it('takes a verdict signed before the registered claims (its fields alone), and refuses one by the token key', async () => {
    const verdict = unsigned()
    const older = { ...verdict, signature: await signer.sign(verdict, FIELDS_ONLY_VERDICT_JWS_TYPE) }
    const result = await verifyVerdictOffline(older, await keys(), expected, NOW)
    assert.equal(result.ok, true)
    // the service's JWKS holds its token key too: a verdict JWS that key signed is not the service's verdict
    const tokenKey = generateSigningKey()
    const jwks = { keys: [...(await keys()).keys, tokenKeyJwk(tokenKey)] }
    const byTokenKey = await new CompactSign(
      new TextEncoder().encode(canonicalize({ ...verdict, ...verdictClaims(verdict) })),
    )
      .setProtectedHeader({ alg: 'EdDSA', kid: String(tokenKeyJwk(tokenKey).kid), typ: VERDICT_JWS_TYPE })
      .sign(tokenKey)
    const forged = await verifyVerdictOffline({ ...verdict, signature: byTokenKey }, jwks, expected, NOW)
    assert.equal(reasonOf(forged), 'signature')
    assert.match(forged.ok ? '' : forged.message, /not a verdict key/)
  })

  it('accepts a genuine allow for the action about to run, and returns the signed fields only', async () => {
    const verdict = await signed()
    const view = { ...verdict, position: 12, revoked: false, expired: false }
    const result = await verifyVerdictOffline(view, await keys(), { ...expected, resourceVersion: 'v7' }, NOW)
    assert.equal(result.ok, true)
    assert.deepEqual(result.ok && result.verdict, verdict)
  })

  it('refuses a verdict with any one field changed after signing', async () => {
    const verdict = await signed()
    for (const change of [
      { resource: 'deployment/wex' },
      { executingIdentity: 'svc-admin' },
      { actionDigest: actionDigestOf({ ...ACTION, resource: 'deployment/wex' }) },
      { expiresAt: '2025-06-01T13:09:00.000Z' },
      { decision: 'allow' as const, revision: 3 },
      { resourceVersion: 'v8' },
    ]) {
      const result = await verifyVerdictOffline({ ...verdict, ...change }, await keys(), expected, NOW)
      assert.equal(result.ok, false)
      assert.equal(!result.ok && result.reason, 'signature', JSON.stringify(change))
    }
  })

  it('refuses a signature with one byte changed', async () => {
    const verdict = await signed()
    const [header, payload, sig] = verdict.signature.split('.') as [string, string, string]
    const flipped = `${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`
    const result = await verifyVerdictOffline(
      { ...verdict, signature: `${header}.${payload}.${flipped}` },
      await keys(),
      expected,
      NOW,
    )
    assert.deepEqual(result.ok ? null : result.reason, 'signature')
  })

  it('refuses a verdict signed by a key the service does not hold, so the caller can refresh its keys', async () => {
    const other = createVerdictSigner(generateSigningKey())
    const verdict = unsigned()
    const forged = { ...verdict, signature: await other.sign(verdict) }
    await assert.rejects(verifyVerdictOffline(forged, await keys(), expected, NOW), UnknownSigningKeyError)
  })

  it('refuses a genuine verdict whose signature was made over another payload', async () => {
    const verdict = await signed()
    const other = await signed({ resource: 'deployment/api' })
    const result = await verifyVerdictOffline(
      { ...verdict, signature: other.signature },
      await keys(),
      expected,
      NOW,
    )
    assert.equal(result.ok ? null : result.reason, 'signature')
  })

  it('refuses a block, naming its failed checks', async () => {
    const verdict = await signed({
      decision: 'block',
      checks: [{ check: 'rollback', status: 'fail', reason: 'no rollback test' }],
    })
    const result = await verifyVerdictOffline(verdict, await keys(), expected, NOW)
    assert.equal(result.ok ? null : result.reason, 'not-allowed')
    assert.match(result.ok ? '' : result.message, /rollback/)
  })

  it('refuses a verdict at or after its expiry', async () => {
    const verdict = await signed()
    const atExpiry = new Date(verdict.expiresAt)
    const result = await verifyVerdictOffline(verdict, await keys(), expected, atExpiry)
    assert.equal(result.ok ? null : result.reason, 'expired')
    const before = await verifyVerdictOffline(
      verdict,
      await keys(),
      expected,
      new Date(atExpiry.getTime() - 1),
    )
    assert.equal(before.ok, true)
  })

  it('refuses a verdict for another plan than the one about to run', async () => {
    const verdict = await signed()
    const action = { ...ACTION, plan: { drop: 'all' } }
    const result = await verifyVerdictOffline(verdict, await keys(), { action }, NOW)
    assert.equal(reasonOf(result), 'plan-mismatch')
    assert.match(result.ok ? '' : result.message, new RegExp(actionDigestOf(action)))
  })

  it('refuses an allow for deployment/web-a when the same plan is about to run on database/payments-primary', async () => {
    const verdict = await signed()
    const attack = { ...ACTION, resource: 'database/payments-primary' }
    const result = await verifyVerdictOffline(verdict, await keys(), { action: attack }, NOW)
    assert.equal(reasonOf(result), 'action-mismatch')
    assert.match(
      result.ok ? '' : result.message,
      /resource deployment\/web-a, not database\/payments-primary/,
    )
  })

  it('refuses an allow for any other proposal, tool, action, resource, environment or executing identity', async () => {
    const verdict = await signed()
    const others: Record<Exclude<keyof ActionIdentity, 'plan'>, string> = {
      proposalId: 'proposal-2',
      tool: 'helm',
      action: 'delete',
      resource: 'database/payments-primary',
      environment: 'staging',
      executingIdentity: 'svc-root',
    }
    for (const [field, value] of Object.entries(others)) {
      const action = { ...ACTION, [field]: value }
      const result = await verifyVerdictOffline(verdict, await keys(), { action }, NOW)
      assert.equal(reasonOf(result), 'action-mismatch', field)
      assert.match(result.ok ? '' : result.message, new RegExp(`^the verdict allows ${field} `), field)
    }
  })

  it('refuses a signed verdict whose fields name the action but whose digest covers another (plan-mismatch)', async () => {
    const verdict = await signed({ actionDigest: actionDigestOf({ ...ACTION, plan: { replicas: 30 } }) })
    const result = await verifyVerdictOffline(verdict, await keys(), expected, NOW)
    assert.equal(reasonOf(result), 'plan-mismatch')
  })

  it('refuses a verdict bound to another resource version than the one seen now', async () => {
    const verdict = await signed()
    const result = await verifyVerdictOffline(
      verdict,
      await keys(),
      { ...expected, resourceVersion: 'v8' },
      NOW,
    )
    assert.equal(result.ok ? null : result.reason, 'resource-mismatch')
  })

  it('refuses what is not a verdict, naming the fields', async () => {
    const { signature: _signature, ...noSignature } = await signed()
    const result = await verifyVerdictOffline(
      { ...noSignature, revision: 'two' },
      await keys(),
      expected,
      NOW,
    )
    assert.equal(result.ok ? null : result.reason, 'malformed')
    assert.match(result.ok ? '' : result.message, /signature/)
    assert.match(result.ok ? '' : result.message, /revision/)
  })
})
