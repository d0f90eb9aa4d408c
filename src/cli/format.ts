import type { FlipCounts } from '../decision/counterfactual.js'
/** Text for people: aligned tables, readable durations. JSON output never goes through here. */

export type Align = 'left' | 'right'

export interface Column {
  readonly header: string
  readonly align?: Align
}

/** Columns padded to their widest cell, two spaces apart; numbers read best right-aligned. */
export const table = (columns: readonly Column[], rows: readonly (readonly string[])[]): string => {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? ''
        const width = widths[i] ?? 0
        return c.align === 'right' ? cell.padStart(width) : cell.padEnd(width)
      })
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n')
}

/** Label and value pairs, the values aligned. */
export const fields = (pairs: readonly (readonly [string, string])[], indent = '  '): string => {
  const width = Math.max(0, ...pairs.map(([label]) => label.length))
  return pairs.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`.trimEnd()).join('\n')
}

const trim = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1).replace(/\.0$/, ''))

/** Seconds as a person reads them: 42 s, 2.5 min, 3.1 h, 4.2 d; '-' when there is none. */
export const duration = (seconds: number | null | undefined): string => {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-'
  const s = Math.max(0, seconds)
  if (s < 60) return `${trim(Math.round(s * 10) / 10)} s`
  if (s < 3600) return `${trim(Math.round((s / 60) * 10) / 10)} min`
  if (s < 86_400) return `${trim(Math.round((s / 3600) * 10) / 10)} h`
  return `${trim(Math.round((s / 86_400) * 10) / 10)} d`
}

/** A share as a percentage with one decimal; '-' when undefined. */
export const percent = (rate: number | null): string =>
  rate === null ? '-' : `${trim(Math.round(rate * 1000) / 10)}%`

/** A count breakdown, largest first: `a=3 b=1`; '-' when empty. */
export const breakdown = (counts: Readonly<Record<string, number>>): string => {
  const entries = Object.entries(counts)
    .filter(([, n]) => n !== 0)
    .sort(([ka, a], [kb, b]) => b - a || (ka < kb ? -1 : 1))
  return entries.length === 0 ? '-' : entries.map(([k, n]) => `${k}=${n}`).join(' ')
}

/** A hash shortened for a table; the JSON output keeps it whole. */
export const shortHash = (hash: string): string => (hash.length > 16 ? `${hash.slice(0, 12)}…` : hash)

/** A value or '-' for none. */
export const orDash = (value: string | number | null | undefined): string =>
  value === null || value === undefined || value === '' ? '-' : String(value)

/** Would-flip counts by one key (agent, tool, environment, check), as a table; nothing when there are none. */
export const countsLines = (title: string, counts: Readonly<Record<string, FlipCounts>>): string[] =>
  Object.keys(counts).length === 0
    ? []
    : [
        '',
        table(
          [
            { header: title },
            { header: 'ALLOW>BLOCK', align: 'right' },
            { header: 'BLOCK>ALLOW', align: 'right' },
          ],
          Object.entries(counts)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([key, c]) => [key, String(c.allowToBlock), String(c.blockToAllow)]),
        ),
      ]
