// Against the real service: an Idempotency-Key reused for another request must not pass for a retry. Before
// keys were bound to their request, approving a second proposal with the first one's key answered the first
// approval again and silently dropped the second, and a submission with a recycled key vanished the same way.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AuditorClient, GovernanceApiError } from '../../src/sdk/index.js'
import { type Cast, observation, type RunningService, setUpWorld, startService } from '../support/service.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('an Idempotency-Key reused for another request', () => {
  let svc: RunningService
  let cast: Cast
  let auditor: AuditorClient

  before(async () => {
    svc = await startService()
    cast = await setUpWorld(svc, { agentId: 'agent-idem' })
    auditor = new AuditorClient({ baseUrl: svc.url, token: await svc.tokenFor('auditor-1', 'auditor') })
    await cast.observer.observe(observation(cast.environment, 'deployment/idem', 'i1'))
  })

  after(async () => {
    await svc?.close()
  })

  /** The ledger head once the decision service has answered everything so far. */
  const quietHead = async () => {
    let last = -1
    for (let stable = 0; stable < 3; ) {
      const { position } = await auditor.ledgerHead()
      stable = position === last ? stable + 1 : 0
      last = position
      await sleep(150)
    }
    return last
  }

  const propose = (replicas: number, idempotencyKey?: string) =>
    cast.agent.submitProposal(
      {
        executingIdentity: cast.identity,
        tool: cast.tool,
        action: 'scale',
        resource: 'deployment/idem',
        environment: cast.environment,
        plan: { replicas },
        expectedImpact: 'high',
        snapshot: { version: 'i1' },
      },
      idempotencyKey === undefined ? undefined : { idempotencyKey },
    )

  const refused = async (attempt: Promise<unknown>) => {
    const error = await attempt.then(
      () => assert.fail('the reused key was accepted'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof GovernanceApiError, String(error))
    assert.equal(error.status, 422)
    assert.equal(error.code, 'idempotency-key-reused')
    assert.match(error.message, /different request/)
  }

  it('refuses an approval of another proposal under the first approval’s key, appending nothing', async () => {
    const a = await propose(3)
    const b = await propose(4)
    const first = await cast.approver.approve(
      a.proposalId,
      { actionDigest: a.actionDigest },
      { idempotencyKey: 'approve-1' },
    )
    assert.equal(first.duplicate, false)
    const head = await quietHead()
    await refused(
      cast.approver.approve(b.proposalId, { actionDigest: b.actionDigest }, { idempotencyKey: 'approve-1' }),
    )
    assert.equal(await quietHead(), head, 'nothing was appended')
    assert.deepEqual((await cast.approver.getProposal(b.proposalId)).approvals, [], 'b stays unapproved')
    // the key still answers the request it was first sent with
    const retried = await cast.approver.approve(
      a.proposalId,
      { actionDigest: a.actionDigest },
      { idempotencyKey: 'approve-1' },
    )
    assert.equal(retried.duplicate, true)
    assert.deepEqual(retried.events, first.events)
    // and a fresh key approves b
    const fresh = await cast.approver.approve(b.proposalId, { actionDigest: b.actionDigest })
    assert.equal(fresh.duplicate, false)
  })

  it('refuses a submission with another plan under a recycled key, appending nothing', async () => {
    const first = await propose(5, 'submit-1')
    const head = await quietHead()
    await refused(propose(6, 'submit-1'))
    assert.equal(await quietHead(), head, 'nothing was appended')
    const again = await propose(5, 'submit-1')
    assert.equal(again.duplicate, true)
    assert.equal(again.proposalId, first.proposalId)
  })
})
