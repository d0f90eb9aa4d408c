// Counterfactual policy replay, ledger events re-decided/s, against the replay of `replay --check` (the same
// ledger re-decided in memory under the policies it published, each verdict signed).
import { join } from 'node:path'
import { counterfactualReplay, publishedPolicy } from '../src/decision/counterfactual.js'
import { replayDecisions } from '../src/decision/replay.js'
import { createVerdictSigner, generateSigningKey } from '../src/decision/signer.js'
import { MemoryDocStore } from '../src/store/memory/doc-store.js'
import { openSqliteEventStore } from '../src/store/sqlite/event-store.js'
import { copyFixture, ledgerFixture } from './ledger.js'
import {
  type BenchOptions,
  type Figure,
  fmt,
  median,
  now,
  progress,
  ratioAtLeast,
  tempFolder,
} from './lib.js'

export const counterfactualFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const size = options.quick ? 10_000 : 100_000
  const rounds = 3
  const fixture = await ledgerFixture(size, progress)
  const folder = tempFolder('counterfactual')
  try {
    copyFixture(fixture, folder.path)
    const store = openSqliteEventStore({ path: join(folder.path, 'ledger.db') })
    const signer = createVerdictSigner(generateSigningKey())
    const published = await publishedPolicy(store, 1)
    if (published === null) throw new Error('the generated ledger publishes no policy version 1')
    // stricter than the one in force: every impact class asks one more approval
    const stricter = {
      ...published,
      version: 99,
      requirements: Object.fromEntries(
        Object.entries(published.requirements).map(([impact, r]) => [
          impact,
          { ...r, approvals: { ...r.approvals, count: Math.min(10, r.approvals.count + 1) } },
        ]),
      ) as typeof published.requirements,
    }
    const events = (await store.head()).position
    const result = { baseline: [] as number[], measured: [] as number[] }
    let flips = 0
    progress(`counterfactual: ${rounds} rounds over a ledger of ${events} events`)
    for (let round = 0; round < rounds; round += 1) {
      let started = now()
      await replayDecisions(store, signer, new MemoryDocStore())
      result.baseline.push(events / ((now() - started) / 1000))
      started = now()
      const report = await counterfactualReplay(store, stricter)
      result.measured.push(report.events / ((now() - started) / 1000))
      flips = report.flips.length
      progress(
        `  round ${round + 1}/${rounds}: replay ${fmt(result.baseline.at(-1))}, counterfactual ${fmt(result.measured.at(-1))} events/s (${flips} flips)`,
      )
    }
    await store.close()
    return [
      ratioAtLeast(
        {
          name: 'counterfactual policy replay',
          value: median(result.measured),
          unit: 'events/s',
          baseline:
            'the replay of replay --check over the same ledger (re-decided in memory, every verdict signed)',
          baselineValue: median(result.baseline),
          note: `${rounds} interleaved rounds over a generated ledger of ${events} events; the whole ledger re-decided in memory with a policy asking one more approval for every impact class in force from the start (${flips} flips)`,
          rounds: { measured: result.measured, baseline: result.baseline },
        },
        0.8,
      ),
    ]
  } finally {
    folder.remove()
  }
}
