import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { StreamVersions } from '../../src/store/stream-versions.js'

const commit = (versions: StreamVersions, tip: number, streams: Record<string, number>) =>
  versions.committed({
    tip: { position: tip, hash: 'h', recordedAt: '' },
    versions: new Map(Object.entries(streams)),
  })

describe('stream versions', () => {
  it('keeps the most recently used streams up to its capacity; a dropped one is read again', () => {
    const versions = new StreamVersions(3)
    versions.at(0)
    commit(versions, 4, { a: 1, b: 1, c: 1, d: 1 })
    assert.deepEqual([...versions.known.keys()], ['b', 'c', 'd'], 'the least recently written is dropped')
    assert.deepEqual(versions.missing(['a', 'b']), ['a'])
    // b was just used: the next commit drops c, the least recently used now
    commit(versions, 5, { e: 1 })
    assert.deepEqual([...versions.known].sort(), [
      ['b', 1],
      ['d', 1],
      ['e', 1],
    ])
  })

  it('drops nothing a batch still needs before it commits, however many streams it reads', () => {
    const versions = new StreamVersions(2)
    versions.at(0)
    versions.learn([
      ['a', 3],
      ['b', 2],
      ['c', 7],
    ])
    assert.equal(versions.known.size, 3, 'read for the batch, kept until it commits')
    commit(versions, 3, { c: 8 })
    assert.deepEqual(
      [...versions.known],
      [
        ['b', 2],
        ['c', 8],
      ],
    )
  })

  it('forgets everything when another writer moved the tip', () => {
    const versions = new StreamVersions()
    versions.at(0)
    commit(versions, 1, { a: 1 })
    versions.at(1)
    assert.deepEqual(versions.missing(['a']), [])
    versions.at(9)
    assert.deepEqual(versions.missing(['a']), ['a'])
  })
})
