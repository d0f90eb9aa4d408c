import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { OpenActionDoc } from '../../projections/open-actions.js'
import { findOpenActions } from '../../src/http/routes/open-actions.js'

const stored = Array.from({ length: 5000 }, (_, i) => {
  const proposalId = `p${String(i).padStart(5, '0')}`
  return [`open:${proposalId}`, { proposalId, agentId: i % 7 === 0 ? 'rare' : 'common' }] as [
    string,
    OpenActionDoc,
  ]
})

/** the projection's list over the stored documents, recording how many documents each read asked for */
const lister = () => {
  const reads: number[] = []
  const list = (prefix: string, { after, limit }: { after?: string; limit: number }) => {
    reads.push(limit)
    return stored
      .filter(([key]) => key.startsWith(prefix) && (after === undefined || key > after))
      .slice(0, limit)
  }
  return { list, reads }
}

test('a page of open actions reads only one document more than it returns', () => {
  const { list, reads } = lister()
  const { found, more } = findOpenActions(list, () => true, { limit: 10 })
  assert.deepEqual(
    found.map((d) => d.proposalId),
    stored.slice(0, 10).map(([, d]) => d.proposalId),
  )
  assert.equal(more, true)
  assert.deepEqual(reads, [11])
})

test('with a filter that skips documents, reads double until the page is full, and the cursor resumes it', () => {
  const { list, reads } = lister()
  const rare = (doc: OpenActionDoc) => doc.agentId === 'rare'
  const first = findOpenActions(list, rare, { limit: 5 })
  assert.deepEqual(
    first.found.map((d) => d.proposalId),
    ['p00000', 'p00007', 'p00014', 'p00021', 'p00028'],
  )
  assert.equal(first.more, true)
  assert.deepEqual(reads, [6, 12, 24])
  const rest = findOpenActions(list, rare, { after: 'p00028' })
  assert.equal(rest.found.length, Math.ceil(5000 / 7) - 5)
  assert.equal(rest.more, false)
  assert.ok(reads.slice(3).every((n) => n <= 1000))
})
