import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { canonicalizeRecorded } from '../../src/domain/canonical.js'
import { chainHash } from '../../src/store/chain.js'
import { leafOf } from '../../src/tree/leaf.js'

const event = (data: unknown, extra: Partial<{ stream: string; type: string }> = {}) => ({
  id: '0190a0b0-0000-7000-8000-00000000000a',
  type: extra.type ?? 'StateObserved',
  stream: extra.stream ?? 'resource-production.deployment/web',
  streamVersion: 12,
  position: 4096,
  recordedAt: '2026-01-05T08:00:00.123Z',
  data,
  metadata: { actor: 'observer-1', correlationId: 'c"1', causationId: null, idempotencyKey: null },
})

test('the chain hash is SHA-256 of the previous hash and the RFC 8785 form of the whole envelope', () => {
  const samples = [
    {},
    { b: 1, a: [true, null, 1.5e-7, -0], é: 'ünïcødé ✓', '\u2028': 'line separator' },
    // 1e21 and a lone surrogate: what an older ledger may hold still hashes as it was recorded
    { nested: { z: { y: [{ x: 1 }, 'two'] } }, big: 1e21, lone: '\ud800', emoji: '😀', quote: 'say "hi"\n' },
  ]
  for (const data of samples) {
    const e = event(data, { stream: 'proposal-p"1', type: 'Type\\With\\Slashes' })
    const prev = 'f'.repeat(64)
    const { id, type, stream, streamVersion, position, recordedAt, metadata } = e
    const expected = createHash('sha256')
      .update(prev)
      .update(canonicalizeRecorded({ id, type, stream, streamVersion, position, recordedAt, data, metadata }))
      .digest('hex')
    assert.equal(chainHash(prev, e), expected)
    assert.equal(chainHash(prev, e, canonicalizeRecorded(data)), expected, 'with the data text given')
  }
})

test("the Merkle tree's leaf is exactly what the chain hash covers after the previous hash", () => {
  const e = event({ b: [1, 'two'], a: { '\ud800': 'lone', emoji: '😀' } })
  const withLinks = { ...e, prevHash: 'a'.repeat(64), hash: 'b'.repeat(64) }
  const leaf = leafOf(withLinks)
  const { id, type, stream, streamVersion, position, recordedAt, data, metadata } = e
  const unlinked = { id, type, stream, streamVersion, position, recordedAt, data, metadata }
  assert.equal(Buffer.from(leaf).toString('utf8'), canonicalizeRecorded(unlinked).replace('\ud800', '\ufffd'))
  const prev = 'c'.repeat(64)
  assert.equal(chainHash(prev, e), createHash('sha256').update(prev).update(leaf).digest('hex'))
})
