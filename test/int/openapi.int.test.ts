// The OpenAPI document as integrators' tools take it: linted by redocly with the repository's rules, and
// turned into a typed client (openapi-typescript + openapi-fetch) that typechecks and drives the live service.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { type RunningService, setUpWorld, startService } from '../support/service.js'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const REDOCLY = join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js')

interface Document {
  servers?: { url: string }[]
  paths: Record<
    string,
    Record<string, { operationId?: string; responses: Record<string, { content?: Record<string, unknown> }> }>
  >
}

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number }
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[]
}

/** `redocly lint --config redocly.yaml <file> --format=json`, as a developer would run it. */
const lint = (file: string): Promise<LintReport> =>
  new Promise((done, fail) => {
    execFile(
      process.execPath,
      [REDOCLY, 'lint', '--config', join(ROOT, 'redocly.yaml'), file, '--format=json'],
      {
        cwd: ROOT,
        maxBuffer: 16 * 1024 * 1024,
        // nothing leaves the machine: no usage report, no check for a newer version
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
      (error, stdout, stderr) => {
        // a failed lint exits 1 with its report on stdout
        try {
          done(JSON.parse(stdout) as LintReport)
        } catch {
          fail(new Error(`redocly printed no report (${error?.message}):\n${stdout}\n${stderr}`))
        }
      },
    )
  })

/** Sends the start of a request and never finishes it; resolves with what the server answers. */
const unfinishedRequest = (port: number, path: string): Promise<string> =>
  new Promise((done, fail) => {
    let heard = ''
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n`),
    )
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      heard += chunk
    })
    socket.on('error', fail)
    socket.on('close', () => done(heard))
  })

/** A client program as an integrator writes it against the generated types. */
const CLIENT = `
import createClient from 'openapi-fetch'
import type { paths } from './api.js'

export interface Tokens {
  readonly agent: string
  readonly observer: string
  readonly auditor: string
}

export const run = async (baseUrl: string, tokens: Tokens, agentId: string, identity: string) => {
  const as = (token: string) =>
    createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${token}\` } })
  const agent = as(tokens.agent)
  const health = await createClient<paths>({ baseUrl }).GET('/health')

  const observed = await as(tokens.observer).POST('/v1/observations', {
    body: {
      environment: 'production',
      resource: 'deployment/web',
      version: 'rv-1',
      digest: 'sha256:rv-1',
      observedAt: new Date().toISOString(),
    },
  })
  const submitted = await agent.POST('/v1/proposals', {
    params: { header: { 'idempotency-key': 'generated-client-1' } },
    body: {
      agentId,
      executingIdentity: identity,
      tool: 'kubectl',
      action: 'scale',
      resource: 'deployment/web',
      environment: 'production',
      plan: { replicas: 3 },
      expectedImpact: 'high',
      snapshot: { version: 'rv-1' },
    },
  })
  if (!submitted.data) throw new Error(\`submitProposal: \${submitted.error?.message}\`)
  const { proposalId } = submitted.data
  const proposal = await agent.GET('/v1/proposals/{proposalId}', { params: { path: { proposalId } } })
  const verdict = await agent.GET('/v1/proposals/{proposalId}/verdict', {
    params: { path: { proposalId }, query: { wait: 5 } },
  })
  // a resource is one path segment: the client percent-encodes deployment/web as deployment%2Fweb
  const path = { environment: 'production', resource: 'deployment/web' }
  const latest = await agent.GET('/v1/observations/{environment}/{resource}', { params: { path } })
  const audit = await as(tokens.auditor).GET('/v1/audit/resources/{environment}/{resource}', { params: { path } })
  const refused = await agent.GET('/v1/audit/resources/{environment}/{resource}', { params: { path } })

  // never called: the generated types know that a proposal is read by its id (tsc fails if they did not)
  // @ts-expect-error the path parameter is missing
  const _withoutId = () => agent.GET('/v1/proposals/{proposalId}', {})

  return {
    health: health.data?.status,
    observedEvents: observed.data?.events.map((e) => e.type),
    proposal: proposal.data && {
      proposalId: proposal.data.proposal.proposalId,
      resource: proposal.data.proposal.resource,
    },
    verdict: verdict.data?.verdict && {
      decision: verdict.data.verdict.decision,
      failing: verdict.data.verdict.checks.filter((c) => c.status === 'fail').map((c) => c.check),
    },
    latest: latest.data && { resource: latest.data.resource, version: latest.data.version },
    audit: audit.data && { resource: audit.data.resource, version: audit.data.lastObservation?.version },
    refused: { status: refused.response.status, error: refused.error?.error },
  }
}
`

/** What the program answers, as the test reads it. */
interface ClientProgram {
  run(
    baseUrl: string,
    tokens: { agent: string; observer: string; auditor: string },
    agentId: string,
    identity: string,
  ): Promise<{
    health?: string
    observedEvents?: string[]
    proposal?: { proposalId: string; resource: string }
    verdict?: { decision: string; failing: string[] }
    latest?: { resource: string; version: string }
    audit?: { resource: string; version?: string }
    refused: { status: number; error?: string }
  }>
}

/** The generator and the compiler: they take a while to load, so they load while the service starts. */
const loadTools = async () => {
  const [typescript, generator] = await Promise.all([import('typescript'), import('openapi-typescript')])
  return { ts: typescript.default, openapiTS: generator.default, astToString: generator.astToString }
}
type Tools = Awaited<ReturnType<typeof loadTools>>

/** The type errors of each program, as tsc would print them: one compilation for all of them. */
const typeErrors = ({ ts }: Tools, files: readonly string[]): string[][] => {
  const program = ts.createProgram(files, {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
    types: [],
    skipLibCheck: true,
  })
  return files.map((file) =>
    ts
      .getPreEmitDiagnostics(program, program.getSourceFile(file))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  )
}

describe('the OpenAPI document at /docs/json', () => {
  let svc: RunningService
  let doc: Document
  let dir: string
  let file: string
  let linted: Promise<LintReport>
  let timedOut: Promise<string>
  let tools: Promise<Tools>

  before(async () => {
    tools = loadTools()
    // 1 s, so that the 408 the document declares on every operation can be seen in a test
    svc = await startService({ REQUEST_TIMEOUT_SECONDS: '1', LOG_LEVEL: 'warn' })
    timedOut = unfinishedRequest(svc.port, '/health')
    const response = await fetch(`${svc.url}/docs/json`)
    assert.equal(response.status, 200)
    doc = (await response.json()) as Document
    dir = mkdtempSync(join(tmpdir(), 'governance-openapi-'))
    file = join(dir, 'openapi.json')
    writeFileSync(file, JSON.stringify(doc))
    // the lint runs in its own process while the client is generated and typechecked here
    linted = lint(file)
  })

  after(async () => {
    await svc?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, ...operation })),
    )

  test('every operation has its own camelCase operationId', () => {
    const ops = operations()
    assert.ok(ops.length >= 50, `${ops.length} operations`)
    for (const op of ops) {
      assert.match(op.operationId ?? '', /^[a-z][a-zA-Z0-9]+$/, `${op.method.toUpperCase()} ${op.path}`)
    }
    const ids = ops.map((op) => op.operationId)
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique')
    assert.deepEqual(doc.servers, [{ url: '/' }], 'without PUBLIC_URL: the server that served the document')
  })

  test('a typed client generated from it typechecks and drives the live service', async () => {
    const loaded = await tools
    const { openapiTS, astToString } = loaded
    const started = performance.now()
    writeFileSync(join(dir, 'api.d.ts'), astToString(await openapiTS(doc as never)))
    const generated = performance.now()
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
    const client = join(dir, 'client.ts')
    writeFileSync(client, CLIENT)
    // the same program reading a field the document does not have: the types are real, it fails
    const wrong = join(dir, 'wrong.ts')
    writeFileSync(
      wrong,
      CLIENT.replace('proposal.data.proposal.resource', 'proposal.data.proposal.resources'),
    )
    const [errors, wrongErrors] = typeErrors(loaded, [client, wrong])
    const typechecked = performance.now()
    const ms = (from: number, to: number) => `${Math.round(to - from)} ms`
    console.log(`generated client: types ${ms(started, generated)}, typecheck ${ms(generated, typechecked)}`)
    assert.deepEqual(errors, [])
    assert.match(wrongErrors?.join('\n') ?? '', /Property 'resources' does not exist/)

    // a policy, kubectl scale registered, an agent bound to its identity and promoted to execute
    const { identity } = await setUpWorld(svc, { agentId: 'agent-generated' })
    const agentId = 'agent-generated'
    const { run } = (await import(pathToFileURL(client).href)) as ClientProgram
    const result = await run(
      svc.url,
      {
        agent: await svc.tokenFor(agentId, 'agent'),
        observer: await svc.tokenFor('observer-1', 'observer'),
        auditor: await svc.tokenFor('auditor-1', 'auditor'),
      },
      agentId,
      identity,
    )
    assert.equal(result.health, 'ok')
    assert.deepEqual(result.observedEvents, ['StateObserved'])
    assert.equal(result.proposal?.resource, 'deployment/web')
    assert.ok(result.verdict, 'a verdict within the wait')
    // no grant for the identity, no simulation, no rollback test: blocked, saying why
    assert.equal(result.verdict.decision, 'block')
    assert.ok(result.verdict.failing.includes('scopedPermission'), result.verdict.failing.join())
    assert.deepEqual(result.latest, { resource: 'deployment/web', version: 'rv-1' })
    assert.deepEqual(result.audit, { resource: 'deployment/web', version: 'rv-1' })
    assert.deepEqual(result.refused, { status: 403, error: 'forbidden' })
  })

  test('redocly lint with redocly.yaml: no error and no warning', async () => {
    const report = await linted
    const problems = report.problems.map(
      (p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`,
    )
    assert.deepEqual(problems, [])
    assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 0 })
  })

  test('the answers it declares are the ones served: media types, and the 408 of a request cut off', async () => {
    const served = async (path: string, token?: string) => {
      const response = await fetch(`${svc.url}${path}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      })
      assert.equal(response.status, 200, path)
      await response.body?.cancel()
      return response.headers.get('content-type') ?? ''
    }
    const declared = (path: string) => Object.keys(doc.paths[path]?.get?.responses['200']?.content ?? {})
    assert.deepEqual(declared('/v1/verdicts/stream'), ['text/event-stream'])
    assert.deepEqual(declared('/metrics'), ['text/plain; version=0.0.4'])
    assert.deepEqual(declared('/health'), ['application/json'])
    for (const path of ['/v1/verdicts/stream', '/metrics', '/health']) {
      const type = await served(path, svc.bootstrapToken)
      assert.ok(type.startsWith(declared(path)[0] ?? '?'), `${path}: ${type}`)
    }
    for (const path of ['/health', '/ready', '/.well-known/jwks.json']) {
      const statuses = Object.keys(doc.paths[path]?.get?.responses ?? {}).sort()
      assert.deepEqual(statuses, path === '/ready' ? ['200', '408', '503'] : ['200', '408'], path)
    }
    assert.match(await timedOut, /^HTTP\/1\.1 408 /)
  })
})
