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

test('the document cache holds no more JSON than its byte budget, and never a document larger than it', () => {
  const cache = new DocCache(1000, 10_000)
  const doc = (n: number) => ({ n, text: 'x'.repeat(3000) })
  let loads = 0
  const load = (n: number) => () => {
    loads += 1
    return doc(n)
  }
  for (let n = 1; n <= 5; n++) cache.get(`k${n}`, load(n))
  assert.ok(cache.heldBytes <= 10_000, `holds ${cache.heldBytes} bytes`)
  assert.equal(cache.size, 3, 'three documents of a little over 3,000 characters fit in 10,000')
  cache.get('k5', load(5))
  cache.get('k1', load(1))
  assert.equal(loads, 6, 'the newest was held, the oldest had been dropped and was loaded again')
  cache.committed(new Map([['huge', { text: 'x'.repeat(20_000) }]]))
  assert.equal(
    cache.get('huge', () => 'from the store'),
    'from the store',
    'too large to hold',
  )
  assert.ok(cache.heldBytes <= 10_000)
  cache.clear()
  assert.equal(cache.heldBytes, 0)
})
