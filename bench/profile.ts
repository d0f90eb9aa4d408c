// `tsx bench/profile.ts FILE.cpuprofile [N]`: the top N functions by self time, and by total time (self plus
// callees), of a V8 CPU profile written by `node --cpu-prof`.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number }
  readonly children?: readonly number[]
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

const where = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame
  const file = url.startsWith('file://') ? relative(process.cwd(), new URL(url).pathname) : url
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim()
}

export const summarise = (profile: CpuProfile, top = 25): string => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfMicros = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0)
  // self time by function (many nodes share a function)
  const self = new Map<string, number>()
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id)
    if (node) self.set(where(node), (self.get(where(node)) ?? 0) + micros)
  }
  // total time by function: each sample counts once for every distinct function on its stack
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map<string, number>()
  for (const [id, micros] of selfMicros) {
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const node = byId.get(at)
      if (!node) break
      const name = where(node)
      if (seen.has(name)) continue
      seen.add(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + micros)
    }
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([name, micros]) =>
          `${((100 * micros) / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}`,
      )
  return [
    `sampled ${(total / 1000).toFixed(0)} ms`,
    '',
    'self time:',
    ...rows(self),
    '',
    'total time (self + callees):',
    ...rows(inclusive),
  ].join('\n')
}

const [file, top] = process.argv.slice(2)
if (file) {
  process.stdout.write(
    `${summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(top ?? 25))}\n`,
  )
}
