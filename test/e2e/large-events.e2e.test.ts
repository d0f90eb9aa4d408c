// A ledger of large events under the 128 MB heap of `npm start`: ~90 proposals of a mebibyte each, written past
// the HTTP schema's limits through the application (as a ledger written before those limits may hold them). The
// service, started as `npm start` starts it on a fresh derived.db, must rebuild its state, become ready, verify
// the chain and stream the verdicts from position 0, and stay alive.
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { peakRssMb } from '../../bench/lib.js'
import { type Service, startService } from '../../bench/service.js'
import { type SubmitProposalInput, submitProposal } from '../../src/application/proposals.js'
import { VERDICT_EVENT_TYPES } from '../../src/http/routes/verdict-stream.js'
import { dataPaths } from '../../src/runtime.js'
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
      for (const match of text.matchAll(/^event: (\S+)$/gm)) types.push(match[1] ?? '')
      text = text.slice(text.lastIndexOf('\n\n') + 1)
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

before(async () => {
  const started = performance.now()
  const api: TestApi = await startTestApi()
  dataDir = api.dataDir
  const world = await seedWorld(api)
  const actor = { sub: 'agent-1', roles: ['agent' as const], approvalRoles: [] }
  // ten at a time: group commit writes them together
  for (let n = 1; n <= PROPOSALS; n += 10) {
    const plans = Array.from({ length: Math.min(10, PROPOSALS - n + 1) }, (_, i) => largePlan(n + i))
    for (const plan of plans) ledgerBytes += JSON.stringify(plan).length
    const inputs = plans.map((plan) => proposalBody(world, plan) as SubmitProposalInput)
    await Promise.all(inputs.map((input) => submitProposal(api.runtime.store, actor, input)))
  }
  await api.settle(60_000)
  headPosition = await api.head()
  // the folder is kept: the service below runs on it
  await api.app.close()
  await api.runtime.close()
  const { derived } = dataPaths(api.config)
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${derived}${suffix}`, { force: true })
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

    const health = await fetch(`${service.url}/health`)
    assert.equal(health.status, 200, 'the service is still alive')
    const ready = await fetch(`${service.url}/ready`)
    assert.equal(ready.status, 200, 'and still ready')
    console.log(`peak resident memory of the service: ${peakRssMb(service.pid).toFixed(0)} MB`)
  } finally {
    await service.stop()
  }
})
