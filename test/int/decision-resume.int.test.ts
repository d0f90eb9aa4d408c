// Events the ledger left unanswered near its head (appended by a version that decided after the commit, and
// stopped before it did) are answered at the next start: the stretch before the head is decided again, and each
// proposal an unanswered event should have drawn a verdict on is decided again, for a DecisionResumed cause
// appended on its stream in the same commit as the new verdict. A start on a ledger with nothing unanswered, however
// much time has passed and whatever came since, appends nothing.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { streams } from '../../src/domain/events.js'
import {
  allowedProposal,
  proposalBody,
  rollbackTestOf,
  SEED,
  seedWorld,
  simulated,
  startTestApi,
  type TestApi,
} from '../support/api.js'

const dataDir = mkdtempSync(join(tmpdir(), 'governance-resume-'))
after(() => rmSync(dataDir, { recursive: true, force: true }))

const start = () => startTestApi({ DATA_DIR: dataDir })

const typesOf = async (api: TestApi, proposalId: string) =>
  (await api.runtime.store.readStream(streams.proposal(proposalId))).map((e) => e.type)

test('a proposal whose last evidence went unanswered is decided again at the next start, once', async () => {
  let api = await start()
  const world = await seedWorld(api)
  const submitted = await api
    .as('agent-1', 'agent')
    .post('/v1/proposals?wait', proposalBody(world, { replicas: 4 }))
  assert.equal(submitted.statusCode, 201, submitted.body)
  const { proposalId, actionDigest } = submitted.json()
  await simulated(api, 'agent-1', proposalId, actionDigest)
  const tested = await api
    .as(SEED.simulator, 'simulator')
    .post(`/v1/proposals/${proposalId}/rollback-tests?wait`, rollbackTestOf(actionDigest, 'run-resume'))
  assert.equal(tested.json().verdict.decision, 'block', 'only the approval is missing')
  const blockRevision = tested.json().verdict.revision

  // the last piece of evidence is appended with nothing answering it, as a version that decided after the
  // commit left it when it stopped between the two
  await api.settle()
  api.runtime.store.answerWith(null)
  const approved = await api
    .as(SEED.approver, 'approver')
    .post(`/v1/proposals/${proposalId}/approvals`, { actionDigest })
  assert.equal(approved.statusCode, 201, approved.body)
  assert.equal((await typesOf(api, proposalId)).at(-1), 'ApprovalGranted', 'nothing answered the approval')
  await api.settle()
  await api.close()

  let headBefore = 0
  api = await start()
  try {
    const events = await api.runtime.store.readStream(streams.proposal(proposalId))
    const [approval, resumed, verdict] = events.slice(-3)
    assert.deepEqual(
      [approval?.type, resumed?.type, verdict?.type],
      ['ApprovalGranted', 'DecisionResumed', 'VerdictIssued'],
    )
    assert.equal(resumed?.position, (approval?.position ?? 0) + 1)
    assert.equal(verdict?.position, (resumed?.position ?? 0) + 1, 'decided in the commit of its cause')
    assert.equal(verdict?.metadata.causationId, resumed?.id)
    const data = verdict?.data as { decision: string; revision: number; basedOnEventId: string }
    assert.equal(data.decision, 'allow', 'the approval is answered now')
    assert.equal(data.revision, blockRevision + 1)
    assert.equal(data.basedOnEventId, resumed?.id)
    assert.equal(
      (resumed?.data as { unansweredEventId?: string } | undefined)?.unansweredEventId,
      approval?.id,
    )
    const served = await api.as('agent-1', 'agent').get(`/v1/proposals/${proposalId}/verdict`)
    assert.equal(served.json().verdict.decision, 'allow')
    await api.settle()
    headBefore = await api.head()
  } finally {
    await api.close()
  }

  // nothing is owed any more: the next start appends nothing
  api = await start()
  try {
    await api.settle()
    assert.equal(await api.head(), headBefore, 'the start appended nothing')
    const resumedCauses = (await typesOf(api, proposalId)).filter((t) => t === 'DecisionResumed')
    assert.equal(resumedCauses.length, 1)
  } finally {
    await api.close()
  }
})

test('a start on a fully answered ledger appends nothing, though evidence aged and other events came since', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'governance-resume-quiet-'))
  try {
    let api = await startTestApi({ DATA_DIR: folder })
    let head = 0
    let first = { proposalId: '', verdictId: '' }
    try {
      const world = await seedWorld(api)
      first = await allowedProposal(api, world, { replicas: 5 })
      // time passes (the checks' reasons tell ages), and unrelated events follow the allow
      await sleep(1100)
      const other = await api
        .as('agent-1', 'agent')
        .post('/v1/proposals?wait', proposalBody(world, { replicas: 6 }))
      assert.equal(other.statusCode, 201, other.body)
      await api.settle()
      head = await api.head()
    } finally {
      await api.close()
    }
    for (let restart = 0; restart < 2; restart += 1) {
      api = await startTestApi({ DATA_DIR: folder })
      try {
        await api.settle()
        assert.equal(await api.head(), head, `start ${restart + 1} appended nothing`)
        const served = await api.as('agent-1', 'agent').get(`/v1/proposals/${first.proposalId}/verdict`)
        assert.equal(
          served.json().verdict.verdictId,
          first.verdictId,
          'the allow an executor holds still stands',
        )
      } finally {
        await api.close()
      }
    }
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
})
