import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { verifyLedger } from '../../src/store/verify.js'
import { wholeLedger } from '../support/ledger-events.js'

const script = fileURLToPath(new URL('../support/append-forever.ts', import.meta.url))
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-crash-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

// a jittered time, not an ack count, so that the kill lands at a different point of a batch each run
const runMs = () => 1500 + Math.floor(Math.random() * 250)

/** Runs the writer for about 1.5 s after its first acknowledgement, then SIGKILLs it. */
const appendThenKill = (file: string): Promise<Map<string, number>> =>
  new Promise((resolve, reject) => {
    const acks = new Map<string, number>()
    const child = spawn(process.execPath, ['--import', 'tsx', script, file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let pending = ''
    let stderr = ''
    let timer: NodeJS.Timeout | undefined
    const kill = () => child.kill('SIGKILL')
    const giveUp = setTimeout(kill, 30_000)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      timer ??= setTimeout(kill, runMs())
      // only whole lines count: a line cut by the kill was never fully acknowledged
      const lines = (pending + chunk).split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) {
        const [id, position] = line.split(' ')
        if (id && position) acks.set(id, Number(position))
      }
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(giveUp)
      if (signal === 'SIGKILL' && acks.size > 0) resolve(acks)
      else reject(new Error(`writer exited (${code ?? signal}) with ${acks.size} acks: ${stderr}`))
    })
  })

it('keeps every acknowledged append and an intact chain after a SIGKILL', { timeout: 60_000 }, async () => {
  const file = path.join(dir, 'ledger.db')
  const acks = await appendThenKill(file)
  const store = openSqliteEventStore({ path: file })
  try {
    const events = await wholeLedger(store)
    const idAt = new Map(events.map((e) => [e.position, e.id]))
    const lost = [...acks].filter(([id, position]) => idAt.get(position) !== id)
    assert.deepEqual(lost, [], 'acknowledged events missing or moved after the crash')
    assert.deepEqual(
      events.map((e) => e.position),
      Array.from({ length: events.length }, (_, i) => i + 1),
    )
    const report = await verifyLedger(store)
    assert.equal(report.ok, true, JSON.stringify(report.firstFault))
    assert.equal(report.checked, events.length)
    console.log(
      `crash test: ${acks.size} acknowledged, ${events.length} in ledger after restart, chain ok (${report.checked} events)`,
    )
  } finally {
    await store.close()
  }
})
