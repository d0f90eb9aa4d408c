import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { breakdown, duration, fields, percent, shortHash, table } from '../../src/cli/format.js'
import { ProgressLine, rate } from '../../src/cli/progress.js'

describe('cli: formatting for people', () => {
  it('aligns a table: text to the left, numbers to the right, two spaces apart', () => {
    const text = table(
      [{ header: 'AGENT' }, { header: 'COUNT', align: 'right' }],
      [
        ['agent-1', '7'],
        ['a', '1234567'],
      ],
    )
    assert.equal(text, ['AGENT      COUNT', 'agent-1        7', 'a        1234567'].join('\n'))
  })

  it('aligns label and value pairs', () => {
    assert.equal(
      fields([
        ['agent', 'agent-1'],
        ['time to recovery', '2 min'],
      ]),
      '  agent             agent-1\n  time to recovery  2 min',
    )
  })

  const durations: Array<[number | null, string]> = [
    [null, '-'],
    [0, '0 s'],
    [42, '42 s'],
    [12.34, '12.3 s'],
    [90, '1.5 min'],
    [600, '10 min'],
    [3600, '1 h'],
    [5400, '1.5 h'],
    [3.25 * 86_400, '3.3 d'],
  ]
  for (const [seconds, text] of durations) {
    it(`shows ${seconds} seconds as ${text}`, () => assert.equal(duration(seconds), text))
  }

  it('shows rates as percentages and counts largest first', () => {
    assert.equal(percent(0.7171), '71.7%')
    assert.equal(percent(1), '100%')
    assert.equal(percent(null), '-')
    assert.equal(breakdown({ tool: 2, agent: 5, zero: 0, env: 2 }), 'agent=5 env=2 tool=2')
    assert.equal(breakdown({}), '-')
  })

  it('shortens a hash for a table only', () => {
    assert.equal(shortHash('a'.repeat(64)), `${'a'.repeat(12)}…`)
    assert.equal(shortHash('abc'), 'abc')
  })
})

describe('cli: progress on stderr', () => {
  const capture = (isTTY: boolean) => {
    const written: string[] = []
    return { written, stream: { isTTY, write: (text: string) => written.push(text) } }
  }

  it('writes one line per finished step when stderr is not a terminal, and nothing in between', () => {
    const { written, stream } = capture(false)
    const line = new ProgressLine(stream)
    line.update('authority: 10/20 events')
    line.finish('authority  20 events')
    assert.deepEqual(written, ['authority  20 events\n'])
  })

  it('redraws one line in place on a terminal, at most every 100 ms', () => {
    const { written, stream } = capture(true)
    let now = 1000
    const line = new ProgressLine(stream, () => now)
    line.update('a: 1')
    now += 50
    line.update('a: 2')
    now += 60
    line.update('a: 3')
    line.finish('a done')
    assert.deepEqual(written, ['\r\x1b[2Ka: 1', '\r\x1b[2Ka: 3', '\r\x1b[2Ka done\n'])
  })

  it('counts events per second', () => {
    assert.equal(rate(1000, 0.5), 2000)
    assert.equal(rate(10, 0), 10)
  })
})
