import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createVerdictSigner, generateSigningKey } from '../../src/decision/signer.js'
import {
  type ActionIdentity,
  ApproverClient,
  AuditorClient,
  type Verdict,
  type VerdictView,
} from '../../src/sdk/index.js'
import {
  type Cast,
  eventually,
  governed,
  policyV,
  proposeWithEvidence,
  type RunningService,
  setUpWorld,
  startService,
} from '../support/service.js'

/** The executor SDK's verdict checks against the real service: each bad verdict refused with its reason. */
describe('the executor SDK refuses forged, expired, revoked and mismatched verdicts', () => {
  let svc: RunningService
  let cast: Cast
  let auditor: AuditorClient
  const reasons: Record<string, string> = {}

  before(async () => {
    svc = await startService()
    cast = await setUpWorld(svc)
    auditor = new AuditorClient({ baseUrl: svc.url, token: await svc.tokenFor('auditor-1', 'auditor') })
  })

  after(async () => {
    console.log(`e2e verdict refusals: ${JSON.stringify(reasons)}`)
    await svc?.close()
  })

  /** Verifies the verdict for the action about to run and records the refusal reason under `what`. */
  const refusal = async (
    what: string,
    verdict: unknown,
    action: ActionIdentity,
    resourceVersion?: string,
  ) => {
    const result = await cast.executor.verifyVerdict(verdict, {
      action,
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
    })
    assert.equal(result.ok, false, `${what} should be refused`)
    if (result.ok) throw new Error('unreachable')
    reasons[what] = result.reason
    return result
  }

  /** Changes one character of a JSON text at `index` to another of the same class, keeping it JSON. */
  const flipAt = (text: string, index: number): string => {
    const c = text[index] ?? ''
    const replacement = /[0-9]/.test(c) ? String((Number(c) + 1) % 10) : c === 'a' ? 'b' : 'a'
    return `${text.slice(0, index)}${replacement}${text.slice(index + 1)}`
  }

  let genuine: Awaited<ReturnType<typeof proposeWithEvidence>>
  const plan = { deployment: 'web', replicas: 6 }

  it('accepts the genuine allow for the plan about to run (the control)', async () => {
    genuine = await proposeWithEvidence(cast, 'deployment/web', plan)
    const result = await cast.executor.verifyVerdict(genuine.verdict, {
      action: genuine.action,
      resourceVersion: genuine.version,
    })
    assert.equal(result.ok, true, result.ok ? '' : result.message)
    assert.equal(
      genuine.verdict.actionDigest,
      genuine.actionDigest,
      'the allow names the digest of the action',
    )
  })

  it('refuses a forged verdict: one byte of a signed field, or of the signature, changed', async () => {
    const json = JSON.stringify(genuine.verdict)
    const inPlanHash = json.indexOf(genuine.planHash) + 'sha256:'.length + 5
    const forged = JSON.parse(flipAt(json, inPlanHash)) as Verdict
    assert.notEqual(forged.planHash, genuine.planHash)
    const byField = await refusal('forged field', forged, genuine.action)
    assert.equal(byField.reason, 'signature')
    assert.match(byField.message, /signed payload is not this verdict/)

    const signature = genuine.verdict.signature
    const inSignature = signature.lastIndexOf('.') + 8
    const badSignature = `${signature.slice(0, inSignature)}${signature[inSignature] === 'A' ? 'B' : 'A'}${signature.slice(inSignature + 1)}`
    const bySignature = await refusal(
      'forged signature',
      { ...genuine.verdict, signature: badSignature },
      genuine.action,
    )
    assert.equal(bySignature.reason, 'signature')
  })

  it('refuses a verdict signed by a key that is not the service’s, even with every field genuine', async () => {
    const { signature: _signature, position: _p, revoked: _r, expired: _e, ...fields } = genuine.verdict
    const impostor = createVerdictSigner(generateSigningKey())
    const forged = { ...fields, signature: await impostor.sign(fields) }
    const result = await refusal('foreign key', forged, genuine.action)
    assert.equal(result.reason, 'signature')
    assert.match(result.message, /no key of the service/)
  })

  it('refuses a mismatched verdict: another plan, another resource with the same plan, another resource version; runs nothing', async () => {
    const other = { deployment: 'web', replicas: 60 }
    const plan = await refusal('mismatched plan', genuine.verdict, { ...genuine.action, plan: other })
    assert.equal(plan.reason, 'plan-mismatch')
    // the allow for deployment/web, cited for deployment/api with the very same plan: another action
    const elsewhere = { ...genuine.action, resource: 'deployment/api' }
    const resource = await refusal('mismatched resource', genuine.verdict, elsewhere)
    assert.equal(resource.reason, 'action-mismatch')
    assert.match(resource.message, /resource deployment\/web, not deployment\/api/)
    const version = await refusal('mismatched resource version', genuine.verdict, genuine.action, 'r-newer')
    assert.equal(version.reason, 'resource-mismatch')

    const head = await auditor.ledgerHead()
    for (const [action, reason] of [
      [{ ...genuine.action, plan: other }, 'plan-mismatch'],
      [elsewhere, 'action-mismatch'],
    ] as const) {
      let ran = false
      const run = await cast.executor.runVerified(genuine.verdict, action, async () => {
        ran = true
      })
      assert.equal(run.outcome, 'refused')
      assert.equal(run.outcome === 'refused' && run.reason.reason, reason)
      assert.equal(ran, false)
    }
    assert.equal((await auditor.ledgerHead()).position, head.position, 'a refused run reports nothing')
  })

  it('refuses a block verdict', async () => {
    const blocked = await cast.agent.submitProposal({
      executingIdentity: cast.identity,
      tool: cast.tool,
      action: 'scale',
      resource: 'deployment/ungranted',
      environment: cast.environment,
      plan: { deployment: 'ungranted', replicas: 1 },
      expectedImpact: 'high',
      snapshot: { version: 'none' },
    })
    const verdict = (await cast.agent.waitForVerdict(blocked.proposalId, {
      timeoutSeconds: 10,
    })) as VerdictView
    const result = await refusal('block', verdict, {
      proposalId: blocked.proposalId,
      tool: cast.tool,
      action: 'scale',
      resource: 'deployment/ungranted',
      environment: cast.environment,
      executingIdentity: cast.identity,
      plan: { deployment: 'ungranted', replicas: 1 },
    })
    assert.equal(result.reason, 'not-allowed')
    assert.match(result.message, /scopedPermission/)
  })

  it('refuses a superseded verdict once new evidence led to a newer one', async () => {
    const secondApprover = new ApproverClient({
      baseUrl: svc.url,
      token: await svc.tokenFor('approver-2', 'approver'),
    })
    await secondApprover.approve(genuine.proposalId, { actionDigest: genuine.actionDigest })
    const newer = (await cast.agent.waitForVerdict(genuine.proposalId, {
      afterRevision: genuine.verdict.revision,
      timeoutSeconds: 10,
    })) as VerdictView
    assert.equal(newer.decision, 'allow')
    assert.equal(newer.supersedes, genuine.verdict.verdictId)
    const result = await refusal('superseded', genuine.verdict, genuine.action)
    assert.equal(result.reason, 'superseded')
    assert.equal((await cast.executor.verifyVerdict(newer, { action: genuine.action })).ok, true)
    genuine = { ...genuine, verdict: newer }
  })

  it('refuses a revoked verdict after a kill switch, and runs nothing', async () => {
    await cast.admin.engageKillSwitch({ scope: 'agent', target: 'agent-e2e', reason: 'agent misbehaving' })
    await eventually('the revocation', async () =>
      (await cast.agent.currentVerdict(genuine.proposalId))?.revoked ? true : undefined,
    )
    const result = await refusal('revoked', genuine.verdict, genuine.action)
    assert.equal(result.reason, 'revoked')
    let ran = false
    const run = await cast.executor.runVerified(genuine.verdict, genuine.action, async () => {
      ran = true
    })
    assert.equal(run.outcome, 'refused')
    assert.equal(ran, false)
    const release = await cast.admin.releaseKillSwitch({
      scope: 'agent',
      target: 'agent-e2e',
      reason: 'investigated',
    })
    assert.equal(release.status, 'pending', 'releasing a kill switch takes a second policy admin')
    await governed(cast.secondAdmin, Promise.resolve(release))
  })

  it('refuses an expired verdict', async () => {
    // a one-second verdict lifetime: the next verdict on the proposal expires almost at once
    await governed(cast.secondAdmin, cast.admin.publishPolicy(policyV(2, { verdictTtlSeconds: 1 })))
    const shortLived = await eventually('a verdict under policy v2', async () => {
      const v = await cast.agent.currentVerdict(genuine.proposalId)
      return v?.policyVersion === 2 && v.decision === 'allow' ? v : undefined
    })
    const wait = Date.parse(shortLived.expiresAt) - Date.now() + 50
    await new Promise((r) => setTimeout(r, Math.max(0, wait)))
    const result = await refusal('expired', shortLived, genuine.action)
    assert.equal(result.reason, 'expired')
    const recorded = await eventually('the VerdictExpired event', async () => {
      const v = await cast.agent.currentVerdict(genuine.proposalId)
      return v?.verdictId === shortLived.verdictId && v.expired ? v : undefined
    })
    assert.equal(recorded.expired, true, 'the scheduler recorded the expiry in the ledger too')
  })
})
