import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { openApiOptions } from '../../src/http/openapi.js'

const serversOf = (env: Record<string, string>) => openApiOptions(loadConfig(env)).openapi?.servers

test('the server is PUBLIC_URL (no trailing slash) when set, else relative to the document', () => {
  assert.deepEqual(serversOf({}), [{ url: '/' }])
  assert.deepEqual(serversOf({ PUBLIC_URL: 'https://governance.internal:8443/ledger/' }), [
    { url: 'https://governance.internal:8443/ledger' },
  ])
})

test('every operation answers 408 with no body, beside what it declares itself', () => {
  const { transformObject } = openApiOptions(loadConfig({}))
  const built = {
    openapi: '3.0.3',
    info: { title: 't', version: '1' },
    components: { responses: { Other: { description: 'kept' } } },
    paths: {
      '/a': {
        get: { responses: { 200: { description: 'ok' } } },
        post: { responses: { 201: { description: 'made' }, 400: { description: 'bad' } } },
        parameters: [],
      },
    },
  }
  const out = transformObject?.({ openapiObject: built } as never) as typeof built & {
    components: { responses: Record<string, { description: string; content?: unknown }> }
  }
  const timeout = { $ref: '#/components/responses/RequestTimeout' }
  assert.deepEqual(out.paths['/a'].get.responses, { 200: { description: 'ok' }, 408: timeout })
  assert.deepEqual(Object.keys(out.paths['/a'].post.responses), ['201', '400', '408'])
  assert.deepEqual(out.paths['/a'].parameters, [], 'what is not an operation is left as it is')
  assert.deepEqual(Object.keys(out.components.responses), ['Other', 'RequestTimeout'])
  assert.equal(out.components.responses.RequestTimeout?.content, undefined, 'no body')
})
