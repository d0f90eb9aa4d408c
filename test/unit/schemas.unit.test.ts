import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { EVENT_TYPES } from '../../src/domain/events.js'
import { jsonSchemaFiles } from '../../src/domain/json-schemas.js'

const root = fileURLToPath(new URL('../../schemas', import.meta.url))

test('schemas/ holds exactly what the zod model generates (run `npm run schemas` after changing events)', () => {
  const generated = jsonSchemaFiles()
  const onDisk = ['envelope.json', ...readdirSync(join(root, 'events')).map((f) => `events/${f}`)].sort()
  assert.deepEqual(onDisk, [...generated.keys()].sort())
  for (const [name, text] of generated) {
    assert.equal(
      readFileSync(join(root, name), 'utf8'),
      text,
      `schemas/${name} drifted from src/domain/events.ts`,
    )
  }
})

test('there is one JSON Schema per event type, and each pins its type name', () => {
  const generated = jsonSchemaFiles()
  for (const type of EVENT_TYPES) {
    const schema = JSON.parse(generated.get(`events/${type}.json`) ?? 'null')
    assert.equal(schema?.properties?.type?.const, type)
    assert.equal(
      schema?.properties?.data?.additionalProperties,
      false,
      `${type} data must refuse unknown fields`,
    )
  }
})

test('a field the model defaults is not required: an event written before it was added still matches', () => {
  const generated = jsonSchemaFiles()
  const required = (type: string): string[] =>
    JSON.parse(generated.get(`events/${type}.json`) ?? 'null')?.properties?.data?.required ?? []
  const policy = required('PolicyPublished')
  assert.ok(!policy.includes('proposalMaxOpenSeconds'), 'policies before the time limit on open proposals')
  assert.ok(policy.includes('verdictTtlSeconds'), 'a field without a default stays required')
  assert.ok(!required('ProposalSubmitted').includes('description'))
  assert.ok(required('ProposalSubmitted').includes('snapshot'))
})
