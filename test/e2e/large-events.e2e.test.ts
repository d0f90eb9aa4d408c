// A ledger of large events under the 128 MB heap of `npm start`: ~90 proposals of a mebibyte each, written past
// the HTTP schema's limits through the application (as a ledger written before those limits may hold them). The
// service, started as `npm start` starts it on a fresh derived.db, must rebuild its state and judge the
// proposals, become ready, verify the chain and stream the verdicts from position 0, and stay alive.
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { peakRssMb } from '../../bench/lib.js'
import { type Service, startService } from '../../bench/service.js'
import { bindingsOf } from '../../src/application/context.js'
import type { SubmitProposalInput } from '../../src/application/proposals.js'
import { agentLevel } from '../../src/application/queries.js'
import { loadPrivateKey } from '../../src/auth/tokens.js'
import { DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner } from '../../src/decision/signer.js'
import { proposal } from '../../src/domain/deciders/index.js'
import { streams } from '../../src/domain/events.js'
import { uuidv7 } from '../../src/domain/ids.js'
import { VERDICT_EVENT_TYPES } from '../../src/http/routes/verdict-stream.js'
import { dataPaths } from '../../src/runtime.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { proposalBody, seedWorld, startTestApi, type TestApi } from '../support/api.js'

const PROPOSALS = 90
/** About a mebibyte of JSON: ten thousand small objects, as a generated plan would hold. */
const largePlan = (n: number) => ({
  proposal: n,
  steps: Array.from({ length: 10_000 }, (_, i) => ({ run: `step ${i} of plan ${n}: ${'x'.repeat(80)}` })),
})
const MEBIBYTE = 1024 * 1024

/** The heap the service reports on /metrics (prom-client's default series), in MB. */
const heapUsedMb = async (service: Service): Promise<number> => {
  const auditor = await service.tokenFor('auditor-1', 'auditor')
  const text = await (
    await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${auditor}` } })
  ).text()
  const bytes = /^nodejs_heap_size_used_bytes (\d+(?:\.\d+)?)/m.exec(text)?.[1]
  assert.ok(bytes, 'the service reports its heap on /metrics')
  return Number(bytes) / MEBIBYTE
}

/** Reads `count` events of the verdict stream from position 0, then hangs up. */
const readVerdicts = async (service: Service, token: string, count: number): Promise<string[]> => {
  const abort = new AbortController()
  const response = await fetch(`${service.url}/v1/verdicts/stream?after=0`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: abort.signal,
  })
  assert.equal(response.status, 200)
  assert.ok(response.body)
  const types: string[] = []
  let text = ''
  const decoder = new TextDecoder()
  try {
    for await (const chunk of response.body) {
      text += decoder.decode(chunk as Uint8Array, { stream: true })
      // complete events only: the last block may still be arriving
      const blocks = text.split('\n\n')
      text = blocks.pop() ?? ''
      for (const block of blocks) {
        const type = /^event: (\S+)$/m.exec(block)?.[1]
        if (type) types.push(type)
      }
      if (types.length >= count) break
    }
  } finally {
    abort.abort()
  }
  return types
}

let dataDir = ''
let ledgerBytes = 0
let headPosition = 0
const proposalIds: string[] = []

before(async () => {
  const started = performance.now()
  const api: TestApi = await startTestApi()
  dataDir = api.dataDir
  const world = await seedWorld(api)
  await api.settle()
  // the folder is kept: the proposals go straight into its ledger, and the service below runs on it
  await api.app.close()
  await api.runtime.close()
  const paths = dataPaths(api.config)
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${paths.derived}${suffix}`, { force: true })
  const store = openSqliteEventStore({ path: paths.ledger })
  // answered in the commit that appends them, as the service answers every append
  await DecisionService.answering(
    store,
    new MemoryDocStore(),
    createVerdictSigner(loadPrivateKey(paths.verdictKey)),
  )
  try {
    const actor = { sub: 'agent-1', roles: ['agent' as const], approvalRoles: [] }
    for (let n = 1; n <= PROPOSALS; n++) {
      const plan = largePlan(n)
      ledgerBytes += JSON.stringify(plan).length
      // decided by the proposal's own rules, appended past the per-type limits new appends are held to: a
      // ledger written before them
      const body = proposalBody(world, plan) as SubmitProposalInput
      const proposalId = uuidv7()
      const context = {
        agentLevel: await agentLevel(store, body.agentId, body.environment),
        boundAgents: (await bindingsOf(store, body.executingIdentity)).agent,
      }
      const events = proposal.decide(
        { type: 'SubmitProposal', actor, proposal: { ...body, proposalId }, context },
        proposal.initialState(),
      )
      const metadata = { actor: actor.sub }
      await store.append(
        streams.proposal(proposalId),
        events.map((e) => ({ type: e.type, data: e.data, metadata })),
        'no-stream',
      )
      proposalIds.push(proposalId)
    }
    headPosition = (await store.head()).position
  } finally {
    await store.close()
  }
  console.log(`ledger written in ${((performance.now() - started) / 1000).toFixed(1)} s`)
})

after(() => {
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
})

test('a ledger of large events never breaks the 128 MB heap: rebuild, verify, stream from 0', async () => {
  console.log(
    `ledger: ${headPosition} events, ${PROPOSALS} plans of ${(ledgerBytes / PROPOSALS / MEBIBYTE).toFixed(2)} MiB each`,
  )
  const service = await startService(dataDir, 60_000)
  try {
    console.log(`fresh derived.db rebuilt and ready after ${(service.readyAfterMs / 1000).toFixed(1)} s`)
    console.log(`after catch-up: heap used ${(await heapUsedMb(service)).toFixed(0)} MB`)

    const auditor = await service.tokenFor('auditor-1', 'auditor')
    const verifying = performance.now()
    const verify = await fetch(`${service.url}/v1/ledger/verify`, {
      headers: { authorization: `Bearer ${auditor}` },
    })
    assert.equal(verify.status, 200)
    const report = (await verify.json()) as { ok: boolean; checked: number; head: { position: number } }
    assert.equal(report.ok, true)
    assert.ok(report.checked >= headPosition, `verified ${report.checked} of ${headPosition} events`)
    console.log(
      `chain of ${report.checked} events verified in ${((performance.now() - verifying) / 1000).toFixed(1)} s`,
    )
    console.log(`after verify: heap used ${(await heapUsedMb(service)).toFixed(0)} MB`)

    const agent = await service.tokenFor('agent-1', 'agent')
    const streamed = performance.now()
    const verdicts = await readVerdicts(service, agent, 3)
    assert.ok(verdicts.length >= 3, `read ${verdicts.length} events`)
    for (const type of verdicts) assert.ok(VERDICT_EVENT_TYPES.has(type), `${type} is a verdict event`)
    console.log(`first verdicts streamed from 0 in ${((performance.now() - streamed) / 1000).toFixed(1)} s`)
    console.log(`after the verdict stream from 0: heap used ${(await heapUsedMb(service)).toFixed(0)} MB`)

    // the audit view keeps the plan's hash; one action's audit reads the plan from the ledger
    const lastId = proposalIds.at(-1)
    const audit = await fetch(`${service.url}/v1/audit/actions/${lastId}`, {
      headers: { authorization: `Bearer ${auditor}` },
    })
    assert.equal(audit.status, 200)
    const action = (await audit.json()) as { what: { plan: { proposal: number; steps: unknown[] } } }
    assert.deepEqual(action.what.plan, largePlan(PROPOSALS))
    const listed = await fetch(`${service.url}/v1/audit/agents/agent-1?limit=1000`, {
      headers: { authorization: `Bearer ${auditor}` },
    })
    assert.equal(listed.status, 200)
    const { proposals } = (await listed.json()) as { proposals: unknown[] }
    assert.equal(proposals.length, PROPOSALS)
    console.log(`after the audits: heap used ${(await heapUsedMb(service)).toFixed(0)} MB`)

    const health = await fetch(`${service.url}/health`)
    assert.equal(health.status, 200, 'the service is still alive')
    const ready = await fetch(`${service.url}/ready`)
    assert.equal(ready.status, 200, 'and still ready')
    console.log(`peak resident memory of the service: ${peakRssMb(service.pid).toFixed(0)} MB`)
  } finally {
    await service.stop()
  }
})
