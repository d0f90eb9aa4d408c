import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DocCache } from '../../src/store/doc-cache.js'

test('the document cache loads once, remembers absent documents and commits, and drops the least recently used', () => {
  const cache = new DocCache(3)
  const loads: string[] = []
  const load = (key: string, doc: unknown) => () => {
    loads.push(key)
    return doc
  }
  assert.deepEqual(cache.get('a', load('a', { n: 1 })), { n: 1 })
  assert.deepEqual(cache.get('a', load('a', { n: 2 })), { n: 1 }, 'held: not loaded again')
  assert.equal(cache.get('missing', load('missing', undefined)), undefined)
  assert.equal(cache.get('missing', load('missing', { late: true })), undefined, 'absence is remembered')
  cache.committed(
    new Map<string, unknown>([
      ['b', { n: 3 }],
      ['missing', null],
    ]),
  )
  assert.deepEqual(cache.get('b', load('b', null)), { n: 3 })
  assert.equal(cache.size, 3)
  // using 'a' again leaves 'missing' the least recently used: a fourth key drops it
  cache.get('a', load('a', { n: 4 }))
  cache.committed(new Map([['c', { n: 5 }]]))
  assert.equal(cache.size, 3)
  assert.deepEqual(cache.get('a', load('a', { n: 6 })), { n: 1 }, 'a was used again, so it stayed')
  assert.equal(cache.get('missing', load('missing', 'reloaded')), 'reloaded', 'the oldest, dropped')
  cache.clear()
  assert.equal(cache.get('c', load('c', 'fresh')), 'fresh')
  assert.deepEqual(loads, ['a', 'missing', 'missing', 'c'])
})
