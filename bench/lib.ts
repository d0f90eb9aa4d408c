// Timing, medians, the results table and bench/results.json: what every figure of the benchmarks (bench/README.md) shares.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'

/** One figure of the benchmarks, against the baseline measured in the same run. */
export interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  /** what the value is compared with */
  readonly baseline: string
  readonly baselineValue: number | null
  /** value / baselineValue */
  readonly ratio: number | null
  /** what passing means, e.g. 'ratio >= 0.8' or 'value <= 256' */
  readonly target: string
  readonly pass: boolean
  /** how it was measured: sizes, rounds, anything the table cannot say */
  readonly note?: string
  /** every round, measured side and baseline side, in the order they ran */
  readonly rounds?: { readonly measured: readonly number[]; readonly baseline: readonly number[] }
}

export interface BenchOptions {
  readonly quick: boolean
  readonly only: ReadonlySet<string> | null
}

export const parseArgs = (argv: readonly string[]): BenchOptions => {
  let quick = false
  let only: Set<string> | null = null
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? ''
    if (arg === '--quick') quick = true
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const list = arg === '--only' ? argv[++i] : arg.slice('--only='.length)
      if (!list) throw new Error('--only needs a comma-separated list of figures')
      only = new Set(list.split(',').map((s) => s.trim()))
    } else if (arg === '--') continue
    else throw new Error(`unknown argument ${arg} (use --quick and --only name[,name])`)
  }
  return { quick, only }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Milliseconds since an arbitrary origin, sub-millisecond. */
export const now = (): number => performance.now()

export const median = (values: readonly number[]): number => percentile(values, 50)

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] as number
}

/**
 * Runs baseline and measured rounds interleaved (B M B M ...), so that a machine that gets noisier moves
 * both sides; each round returns its figure (a rate or a time). Returns every round, medians last.
 */
export const interleave = async (
  rounds: number,
  baseline: (round: number) => Promise<number>,
  measured: (round: number) => Promise<number>,
  log: (line: string) => void = progress,
): Promise<{ baseline: number[]; measured: number[] }> => {
  const result = { baseline: [] as number[], measured: [] as number[] }
  for (let round = 0; round < rounds; round += 1) {
    const b = await baseline(round)
    result.baseline.push(b)
    const m = await measured(round)
    result.measured.push(m)
    log(`  round ${round + 1}/${rounds}: baseline ${fmt(b)}, measured ${fmt(m)}`)
  }
  return result
}

/** A figure whose value should be at least `atLeast` times its baseline (a throughput). */
export const ratioAtLeast = (
  fields: Omit<Figure, 'ratio' | 'target' | 'pass'> & { readonly baselineValue: number },
  atLeast: number,
): Figure => {
  const ratio = fields.value / fields.baselineValue
  return { ...fields, ratio, target: `ratio >= ${atLeast}`, pass: ratio >= atLeast }
}

/** A figure whose value should be at most `atMost` times its baseline (a latency as the ledger grows). */
export const ratioAtMost = (
  fields: Omit<Figure, 'ratio' | 'target' | 'pass'> & { readonly baselineValue: number },
  atMost: number,
): Figure => {
  const ratio = fields.value / fields.baselineValue
  return { ...fields, ratio, target: `ratio <= ${atMost}`, pass: ratio <= atMost }
}

/** A figure with an absolute limit on its value; the baseline is shown for context. */
export const valueAtMost = (fields: Omit<Figure, 'ratio' | 'target' | 'pass'>, atMost: number): Figure => ({
  ...fields,
  ratio: fields.baselineValue === null ? null : fields.value / fields.baselineValue,
  target: `value <= ${atMost}`,
  pass: fields.value <= atMost,
})

/** A figure reported for information only: no target, always passes. */
export const reported = (fields: Omit<Figure, 'ratio' | 'target' | 'pass'>): Figure => ({
  ...fields,
  ratio: fields.baselineValue === null ? null : fields.value / fields.baselineValue,
  target: 'reported',
  pass: true,
})

export const fmt = (n: number | null | undefined): string => {
  if (n === null || n === undefined || Number.isNaN(n)) return '-'
  const abs = Math.abs(n)
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US')
  if (abs >= 100) return n.toFixed(0)
  if (abs >= 10) return n.toFixed(1)
  if (abs >= 1) return n.toFixed(2)
  return n.toFixed(3)
}

export const progress = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

export const table = (figures: readonly Figure[]): string => {
  const header = ['figure', 'value', 'unit', 'baseline', 'ratio', 'target', 'pass']
  const rows = figures.map((f) => [
    f.name,
    fmt(f.value),
    f.unit,
    fmt(f.baselineValue),
    f.ratio === null ? '-' : f.ratio.toFixed(3),
    f.target,
    f.pass ? 'yes' : 'NO',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = new Set([1, 3, 4])
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ')
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
  const notes = figures.filter((f) => f.note).map((f) => `  ${f.name}: ${f.note} (baseline: ${f.baseline})`)
  const plain = figures.filter((f) => !f.note).map((f) => `  ${f.name}: baseline: ${f.baseline}`)
  return [...out, '', 'how each was measured:', ...notes, ...plain].join('\n')
}

export const machine = () => {
  const cores = cpus()
  return {
    cpus: cores.length,
    cpuModel: cores[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  }
}

/** The commit checked out now, `+changes` when its sources were changed since (read only); null outside git. */
export const headCommit = (): string | null => {
  const git = (...args: string[]) =>
    execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  try {
    // sources changed since the commit are measured too: the commit alone would not say what ran
    const sources = ['src', 'projections', 'bench', ':!bench/results.json']
    const changed = git('status', '--porcelain', '--untracked-files=no', '--', ...sources)
    return `${git('rev-parse', 'HEAD')}${changed === '' ? '' : '+changes'}`
  } catch {
    return null
  }
}

export const writeResults = (
  path: string,
  figures: readonly Figure[],
  extra: {
    readonly mode: string
    readonly commit: string | null
    readonly startedAt: string
    readonly seconds: number
  },
): void => {
  const body = { date: new Date().toISOString(), ...extra, machine: machine(), figures }
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`)
}

/** A fresh folder under the system temp folder, removed by the returned function. */
export const tempFolder = (prefix: string): { path: string; remove(): void } => {
  const path = mkdtempSync(join(tmpdir(), `bench-${prefix}-`))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

/** Resident memory of a process, in MB, from /proc (Linux). */
export const rssMb = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`)
  return Number(kb) / 1024
}

/** Peak resident memory of a process, in MB (VmHWM). */
export const peakRssMb = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1]
  if (kb === undefined) throw new Error(`no VmHWM for process ${pid}`)
  return Number(kb) / 1024
}
