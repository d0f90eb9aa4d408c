import assert from 'node:assert/strict'
import { test } from 'node:test'
import { canonicalize } from '../../src/domain/canonical.js'
import { clipReason } from '../../src/domain/events.js'

test('a clipped reason never ends in half a surrogate pair: a kill switch with any reason can be answered', () => {
  for (let pad = 1990; pad <= 2002; pad += 1) {
    const reason = `${'x'.repeat(pad)}${'🛑'.repeat(20)}`
    const clipped = clipReason(reason)
    assert.ok(clipped.length <= 2000, `${pad}: at most 2000 units`)
    assert.doesNotThrow(() => canonicalize({ reason: clipped }), `${pad}: canonical JSON takes it`)
  }
  assert.equal(clipReason('short'), 'short')
})
