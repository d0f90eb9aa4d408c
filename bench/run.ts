// `npm run bench [-- --quick] [-- --only name[,name]]`: measures the figures of bench/README.md, each against a
// baseline measured in the same run, prints a table and writes bench/results.json. Never fails on a missed target.
import { fileURLToPath } from 'node:url'
import { appendsFigure } from './appends.js'
import { asOfFigure } from './as-of.js'
import { counterfactualFigure } from './counterfactual.js'
import { decisionsFigure } from './decisions.js'
import { instancesFigure } from './instances.js'
import {
  type BenchOptions,
  type Figure,
  fmt,
  headCommit,
  parseArgs,
  progress,
  table,
  writeResults,
} from './lib.js'
import { rebuildFigure } from './rebuild.js'
import { relayFigure } from './relay.js'
import { scaleFigure } from './scale.js'
import { treeFigure } from './tree.js'

const FIGURES: ReadonlyArray<readonly [string, (options: BenchOptions) => Promise<Figure[]>]> = [
  ['appends', appendsFigure],
  ['as-of', asOfFigure],
  ['counterfactual', counterfactualFigure],
  ['decisions', decisionsFigure],
  ['instances', instancesFigure],
  ['rebuild', rebuildFigure],
  ['relay', relayFigure],
  ['scale', scaleFigure],
  ['tree', treeFigure],
]

const main = async (): Promise<void> => {
  const options = parseArgs(process.argv.slice(2))
  const names = FIGURES.map(([name]) => name)
  for (const name of options.only ?? []) {
    if (!names.includes(name)) throw new Error(`no figure ${name}: choose from ${names.join(', ')}`)
  }
  const mode = options.quick ? 'quick' : 'full'
  const startedAt = new Date().toISOString()
  // the code measured is the code checked out when the run starts (the children load it then)
  const commit = headCommit()
  const started = performance.now()
  const figures: Figure[] = []
  const failures: string[] = []
  for (const [name, run] of FIGURES) {
    if (options.only && !options.only.has(name)) continue
    const t0 = performance.now()
    progress(`\n== ${name} (${mode})`)
    try {
      figures.push(...(await run(options)))
    } catch (error) {
      // one figure that cannot run does not hide the others
      failures.push(`${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    }
    progress(`== ${name} took ${fmt((performance.now() - t0) / 1000)} s`)
  }
  const seconds = (performance.now() - started) / 1000
  const path = fileURLToPath(new URL('results.json', import.meta.url))
  writeResults(path, figures, { mode, commit, startedAt, seconds })
  process.stdout.write(`\n${table(figures)}\n\n`)
  const missed = figures.filter((f) => !f.pass)
  process.stdout.write(
    missed.length === 0
      ? `every target met (${mode} run, ${fmt(seconds)} s); results in ${path}\n`
      : `targets missed: ${missed.map((f) => f.name).join('; ')} (${mode} run, ${fmt(seconds)} s); results in ${path}\n`,
  )
  for (const failure of failures) process.stdout.write(`FIGURE NOT MEASURED: ${failure}\n`)
}

await main()
// children, brokers and timers are closed by each figure; exit even if a library keeps a handle open
process.exit(0)
