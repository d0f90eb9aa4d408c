import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { CheckpointMovedError, type DocStore } from '../../src/store/docs.js'

/** The DocStore semantics every implementation shares; `open` gives a fresh, empty store. */
export const docStoreContract = (name: string, open: () => DocStore): void => {
  describe(`DocStore contract: ${name}`, () => {
    let docs: DocStore

    beforeEach(() => {
      docs = open()
    })

    afterEach(() => {
      docs.close()
    })

    const seed = () =>
      docs.commit(
        'agents',
        new Map<string, unknown>([
          ['agent-b', { level: 'observe' }],
          ['agent-a', { level: 'execute', envs: ['prod'] }],
          ['agent-c', { level: 'simulate' }],
          ['tool-x', { impact: 'high' }],
        ]),
        7,
      )

    it('commits documents and the checkpoint together, and reads them back', () => {
      assert.equal(docs.checkpoint('agents'), 0)
      assert.equal(docs.get('agents', 'agent-a'), undefined)
      seed()
      assert.deepEqual(docs.get('agents', 'agent-a'), { level: 'execute', envs: ['prod'] })
      assert.equal(docs.checkpoint('agents'), 7)
    })

    it('returns a copy, so that changing it does not change the store', () => {
      const doc = { tags: ['a'] }
      docs.commit('ns', new Map([['k', doc]]), 1)
      doc.tags.push('b')
      const read = docs.get('ns', 'k') as { tags: string[] }
      read.tags.push('c')
      assert.deepEqual(docs.get('ns', 'k'), { tags: ['a'] })
    })

    it('replaces a document and deletes one committed as null', () => {
      seed()
      docs.commit(
        'agents',
        new Map<string, unknown>([
          ['agent-a', { level: 'recommend' }],
          ['agent-b', null],
        ]),
        8,
      )
      assert.deepEqual(docs.get('agents', 'agent-a'), { level: 'recommend' })
      assert.equal(docs.get('agents', 'agent-b'), undefined)
      assert.equal(docs.checkpoint('agents'), 8)
    })

    it('lists the documents under a prefix in key order, with paging', () => {
      seed()
      assert.deepEqual(
        docs.list('agents', 'agent-').map(([key]) => key),
        ['agent-a', 'agent-b', 'agent-c'],
      )
      assert.deepEqual(docs.list('agents', 'agent-', { limit: 2 }), [
        ['agent-a', { level: 'execute', envs: ['prod'] }],
        ['agent-b', { level: 'observe' }],
      ])
      assert.deepEqual(docs.list('agents', 'agent-', { after: 'agent-b' }), [
        ['agent-c', { level: 'simulate' }],
      ])
      assert.deepEqual(docs.list('agents', 'agent-', { after: 'agent-c' }), [])
      assert.deepEqual(
        docs.list('agents', '').map(([key]) => key),
        ['agent-a', 'agent-b', 'agent-c', 'tool-x'],
      )
      assert.deepEqual(docs.list('agents', 'nothing'), [])
    })

    it('keeps keys beyond the basic plane under their prefix, in code point order', () => {
      docs.commit(
        'ns',
        new Map<string, unknown>([
          ['p-\u{1f600}', 1],
          ['p-\uff5e', 2],
          ['p-a', 3],
        ]),
        1,
      )
      assert.deepEqual(
        docs.list('ns', 'p-').map(([key]) => key),
        ['p-a', 'p-\uff5e', 'p-\u{1f600}'],
      )
    })

    it('keeps namespaces apart, and wipe drops one namespace with its checkpoint', () => {
      seed()
      docs.commit('other', new Map([['agent-a', { level: 'observe' }]]), 3)
      docs.wipe('agents')
      assert.deepEqual(docs.list('agents', ''), [])
      assert.equal(docs.checkpoint('agents'), 0)
      assert.deepEqual(docs.get('other', 'agent-a'), { level: 'observe' })
      assert.equal(docs.checkpoint('other'), 3)
    })

    it('dumps canonical JSON in key order', () => {
      docs.commit(
        'ns',
        new Map<string, unknown>([
          ['b', { z: 1, a: [true, null, 'x'] }],
          ['a', { y: 2.5, b: { d: 1, c: 2 } }],
        ]),
        2,
      )
      assert.deepEqual(docs.dump('ns'), [
        ['a', '{"b":{"c":2,"d":1},"y":2.5}'],
        ['b', '{"a":[true,null,"x"],"z":1}'],
      ])
    })

    it('changes nothing when a commit holds a document that is not JSON', () => {
      seed()
      const bad = new Map<string, unknown>([
        ['agent-a', { level: 'observe' }],
        ['agent-z', () => 'not json'],
      ])
      assert.throws(() => docs.commit('agents', bad, 9), TypeError)
      assert.deepEqual(docs.get('agents', 'agent-a'), { level: 'execute', envs: ['prod'] })
      assert.equal(docs.checkpoint('agents'), 7)
    })

    it('commits on an expected checkpoint only while it still holds, and changes nothing otherwise', () => {
      seed()
      const next = new Map<string, unknown>([['agent-a', { level: 'simulate' }]])
      assert.throws(() => docs.commit('agents', next, 9, 5), CheckpointMovedError)
      assert.deepEqual(docs.get('agents', 'agent-a'), { level: 'execute', envs: ['prod'] })
      assert.equal(docs.checkpoint('agents'), 7)
      docs.commit('agents', next, 9, 7)
      assert.deepEqual(docs.get('agents', 'agent-a'), { level: 'simulate' })
      assert.equal(docs.checkpoint('agents'), 9)
    })

    it('answers as of a snapshot boundary from the documents kept there, the first kept staying', () => {
      const at = (boundary: number, entries: Array<[string, unknown]>) =>
        new Map([[boundary, new Map<string, unknown>(entries)]])
      // up to 10: a and b; at boundary 10 both as they were (b had none), then a changed, b created, c created
      docs.commit('ns', new Map([['a', 1]]), 10)
      docs.commit(
        'ns',
        new Map([
          ['a', 2],
          ['b', 1],
          ['c', 1],
        ]),
        15,
        10,
        at(10, [
          ['a', 1],
          ['b', null],
          ['c', null],
        ]),
      )
      // later in the same stretch: what is kept at 10 stays; at 20, c is deleted
      docs.commit('ns', new Map([['a', 3]]), 18, 15, at(10, [['a', 2]]))
      docs.commit('ns', new Map([['c', null]]), 25, 18, at(20, [['c', 1]]))
      assert.equal(docs.getAt('ns', 'a', 10), 1)
      assert.equal(docs.getAt('ns', 'b', 10), undefined)
      assert.equal(docs.getAt('ns', 'a', 20), 3)
      assert.equal(docs.getAt('ns', 'c', 20), 1)
      assert.equal(docs.getAt('ns', 'c', 30), undefined)
      assert.deepEqual(docs.listAt('ns', '', 10), [['a', 1]])
      assert.deepEqual(docs.listAt('ns', '', 20), [
        ['a', 3],
        ['b', 1],
        ['c', 1],
      ])
      assert.deepEqual(docs.listAt('ns', '', 20, { after: 'a', limit: 1 }), [['b', 1]])
      assert.deepEqual(docs.listAt('ns', '', 30), [
        ['a', 3],
        ['b', 1],
      ])
      docs.wipe('ns')
      assert.deepEqual(docs.listAt('ns', '', 10), [])
    })
  })
}
