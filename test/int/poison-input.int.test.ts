// The poison inputs: what once stopped every consumer, answered 500 or changed meaning on the way in is now a
// clear 4xx that appends nothing; a ledger that already holds such an event still loads, verifies and replays.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { ConfigSchema } from '../../src/config.js'
import { actionDigestOf, canonicalize, planHashOf } from '../../src/domain/canonical.js'
import { streams } from '../../src/domain/events.js'
import { PLAN_LIMITS } from '../../src/domain/limits.js'
import { startRuntime } from '../../src/runtime.js'
import {
  appendsNothing,
  expectError,
  proposalBody,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

const BIN = fileURLToPath(new URL('../../bin/governance-ledger.mjs', import.meta.url))

const cli = (args: readonly string[], dataDir: string): Promise<{ code: number | null; out: string }> =>
  new Promise((resolve, reject) => {
    const env = { ...process.env }
    for (const key of Object.keys(ConfigSchema.shape)) delete env[key]
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...env, DATA_DIR: dataDir } })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, out }))
  })

/** A plan nested `depth` objects deep, as JSON text. */
const nestedText = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`

describe('poison input', () => {
  let api: TestApi
  let world: World

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
  })
  after(() => api.close())

  /** Sends a proposal whose plan is this raw JSON text, as agent-1. */
  const propose = async (planText: string) => {
    const base = JSON.stringify(proposalBody(world, { replicas: 5 }))
    assert.ok(base.includes('{"replicas":5}'))
    return api.app.inject({
      method: 'POST',
      url: '/v1/proposals',
      headers: {
        authorization: `Bearer ${await api.tokenFor('agent-1', 'agent')}`,
        'content-type': 'application/json',
      },
      payload: base.replace('{"replicas":5}', planText),
    })
  }

  test('each reproduction is refused with a clear 4xx naming what and where, and appends nothing', async () => {
    const cases: [string, string, number, RegExp][] = [
      ['a 36 KB plan nested 6,000 deep', nestedText(6000), 400, /deeper than 64 levels \(at \$\.plan\.a/],
      ['a plan nested 100,000 deep', nestedText(100_000), 400, /deeper than 64 levels/],
      [
        'a plan one level too deep',
        nestedText(PLAN_LIMITS.maxDepth + 1),
        400,
        /body\.plan is deeper than 32 levels/,
      ],
      ['1e400', '{"x":1e400}', 400, /1e400 is beyond what a double holds \(at \$\.plan\.x\)/],
      ['2^53+1', '{"x":9007199254740993}', 400, /9007199254740993 is beyond ±\(2\^53-1\)/],
      ['a duplicate key', '{"x":1,"x":2}', 400, /the key "x" appears twice in one object \(at \$\.plan\.x\)/],
      ['a lone surrogate', '{"x":"\\ud800"}', 400, /lone surrogate.*\(at \$\.plan\.x\)/],
      ['a 1 MB plan', JSON.stringify({ s: 'x'.repeat(1024 * 1024) }), 413, /./],
      [
        'a 100 KB plan under the body limit',
        JSON.stringify({ s: Array.from({ length: 10 }, () => 'x'.repeat(10_000)) }),
        413,
        /body\.plan is larger than 65536 bytes of canonical JSON/,
      ],
    ]
    for (const [what, plan, status, message] of cases) {
      const answer = await appendsNothing(api, () => propose(plan))
      const body = expectError(answer, status, status === 413 ? 'payload-too-large' : 'invalid')
      assert.match(body.message, message, what)
    }
    // 36 KB at 6,000 deep, as reported
    assert.ok(nestedText(6000).length > 35_000)
  })

  test('a plan at every limit is accepted, and every consumer processes it', async () => {
    let plan: unknown = 'leaf'
    for (let depth = 1; depth < PLAN_LIMITS.maxDepth; depth += 1) plan = { a: plan }
    const answer = await propose(
      JSON.stringify({ deep: plan, n: Number.MAX_SAFE_INTEGER, m: -0, emoji: '😀' }),
    )
    assert.equal(answer.statusCode, 201, answer.body)
    await api.settle()
    const { proposalId } = answer.json()
    const verdict = await api.as('agent-1', 'agent').get(`/v1/proposals/${proposalId}/verdict`)
    assert.equal(verdict.statusCode, 200, verdict.body)
    assert.ok(verdict.json().verdict, 'the decision service judged it')
  })

  test('a ledger that already holds a 6,000-deep plan loads, verifies, replays and serves', async () => {
    // as an older version recorded it, straight into the store
    const plan = JSON.parse(nestedText(6000)) as Record<string, unknown>
    const proposalId = 'poison-6000'
    const body = proposalBody(world, plan)
    const action = { ...body, proposalId }
    const data = {
      ...action,
      planHash: planHashOf(plan),
      actionDigest: actionDigestOf(action),
      description: '',
    }
    const { runtime, config, dataDir } = api
    const [stored] = (
      await runtime.store.append(
        streams.proposal(proposalId),
        [{ type: 'ProposalSubmitted', data, metadata: { actor: 'agent-1' } }],
        'no-stream',
      )
    ).events
    assert.ok(stored)
    assert.equal(canonicalize(stored.data), canonicalize(data), 'stored as its canonical form')
    // every consumer gets past it: the decision service and the four views
    await api.settle()
    const verdict = await api.as('agent-1', 'agent').get(`/v1/proposals/${proposalId}/verdict`)
    assert.equal(verdict.statusCode, 200, verdict.body)
    assert.ok(verdict.json().verdict, 'the decision service judged it')
    // and serves it back as it was recorded, deeper than the native JSON writer goes
    const read = await api.as('agent-1', 'agent').get(`/v1/proposals/${proposalId}`)
    assert.equal(read.statusCode, 200, read.body.slice(0, 300))
    assert.equal(canonicalize(read.json().proposal.plan), nestedText(6000))

    await api.app.close()
    await runtime.close()
    const verify = await cli(['verify'], dataDir)
    console.log(`poison ledger: verify exit ${verify.code}: ${verify.out.trim().split('\n')[0]}`)
    assert.equal(verify.code, 0, verify.out)
    assert.match(verify.out, /Ledger intact/)
    const replay = await cli(['replay'], dataDir)
    console.log(`poison ledger: replay exit ${replay.code}: ${replay.out.trim().split('\n').at(-1)}`)
    assert.equal(replay.code, 0, replay.out)
    assert.doesNotMatch(replay.out, /call stack/)
    const audit = await cli(['audit', 'action', proposalId, '--json'], dataDir)
    assert.equal(audit.code, 0, audit.out.slice(0, 300))
    assert.ok(audit.out.includes(nestedText(6000)), 'the audit trail holds the plan as recorded')
    const check = await cli(['replay', '--check'], dataDir)
    assert.doesNotMatch(check.out, /call stack/)
    assert.ok(check.code === 0 || check.code === 1, check.out)

    // and the service starts again on it, its consumers at the head
    const again = await startRuntime(config, pino({ level: 'silent' }))
    try {
      const head = (await again.store.head()).position
      for (let waited = 0; ; waited += 1) {
        const positions = [again.decision.position, ...Object.values(again.views).map((v) => v.checkpoint())]
        if (positions.every((p) => p >= head)) break
        assert.ok(waited < 500, `consumers at ${positions}, head ${head}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    } finally {
      await again.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
