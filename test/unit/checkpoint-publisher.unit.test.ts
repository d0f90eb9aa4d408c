import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import type { NoteSigner } from '../../src/checkpoint/note.js'
import { CheckpointFolder, CheckpointPublisher } from '../../src/checkpoint/publisher.js'
import { localNoteSigner } from '../../src/checkpoint/signer.js'
import { leafHash } from '../../src/tree/merkle.js'

const ORIGIN = 'log.example/governance-ledger'
const scratch = mkdtempSync(join(tmpdir(), 'checkpoint-publisher-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

/** A tree of `size` leaves whose head at any size is the hash of that size: all a publisher reads of it. */
const treeOf = (at: { size: number }) => ({
  size: () => at.size,
  root: (size = at.size) => leafHash(String(size)),
})

describe('the checkpoint publisher', () => {
  it('says a cut failed (for /metrics) until the next one succeeds, and writes nothing meanwhile', async () => {
    const local = localNoteSigner(ORIGIN, generateKeyPairSync('ed25519').privateKey)
    let refuse = true
    const signer: NoteSigner = {
      ...local,
      sign: async (message) => {
        if (refuse) throw new Error('the KMS refused: key disabled')
        return local.sign(message)
      },
    }
    const folder = new CheckpointFolder(join(scratch, 'failing'))
    const at = { size: 3 }
    const publisher = new CheckpointPublisher(
      treeOf(at),
      signer,
      ORIGIN,
      folder,
      { everyEvents: 1, everySeconds: 60 },
      [],
      pino({ level: 'silent' }),
    )
    assert.equal(publisher.failure, null)
    await assert.rejects(publisher.tick(), /the KMS refused/)
    assert.match(String(publisher.failure), /key disabled/)
    assert.deepEqual(readdirSync(folder.dir), [], 'no checkpoint without its signature')
    refuse = false
    const cut = await publisher.tick()
    assert.equal(cut?.checkpoint.size, 3)
    assert.equal(publisher.failure, null)
  })

  it('cuts the forced checkpoint asked for while another cut is under way (the last one at stop)', async () => {
    const local = localNoteSigner(ORIGIN, generateKeyPairSync('ed25519').privateKey)
    // the first signature waits until released: a signing command that is slow to answer
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const at = { size: 5 }
    let calls = 0
    const signer: NoteSigner = {
      ...local,
      sign: async (message) => {
        calls += 1
        if (calls === 1) {
          // the ledger grows while the first cut is being signed
          at.size = 8
          await held
        }
        return local.sign(message)
      },
    }
    const folder = new CheckpointFolder(join(scratch, 'forced'))
    const publisher = new CheckpointPublisher(
      treeOf(at),
      signer,
      ORIGIN,
      folder,
      { everyEvents: 1, everySeconds: 60 },
      [],
      pino({ level: 'silent' }),
    )
    const scheduled = publisher.tick()
    await new Promise((resolve) => setImmediate(resolve))
    const atStop = publisher.tick(Date.now(), true)
    release()
    await scheduled
    const last = await atStop
    assert.deepEqual(folder.sizes(), [5, 8])
    assert.equal(last?.checkpoint.size, 8)
    assert.deepEqual(readdirSync(folder.dir).sort(), [
      '0000000000000005.checkpoint',
      '0000000000000008.checkpoint',
    ])
  })

  it('writes each size once, whole, and leaves nothing else in the folder', () => {
    const folder = new CheckpointFolder(join(scratch, 'once'))
    assert.equal(folder.write(3, 'first\n'), true)
    assert.equal(folder.write(3, 'second\n'), false)
    assert.equal(folder.read(3), 'first\n')
    assert.deepEqual(readdirSync(folder.dir), ['0000000000000003.checkpoint'])
    assert.deepEqual(folder.latest(), { size: 3, note: 'first\n' })
  })
})
