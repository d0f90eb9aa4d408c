// Branch survival summed over windows and shown as the API and the command line both show them.
import type { AdversarialKind } from '../src/domain/survival.js'
import { survivalRate } from '../src/domain/survival.js'
import { ADVERSARIAL_KINDS, plus, type SurvivalCounts, zeroCounts } from './survival.js'

/** Survived over run; null when none ran, where a run of windows would otherwise read as a perfect score. */
export const rateOrNull = (survived: number, run: number): number | null =>
  run === 0 ? null : survivalRate(survived, run)

export interface KindFigures {
  readonly branches: number
  readonly survived: number
  readonly failed: number
  readonly survivalRate: number | null
}

export interface SurvivalFigures {
  readonly runs: number
  readonly runsPassed: number
  readonly adversarialBranches: number
  readonly survived: number
  readonly failed: number
  readonly survivalRate: number | null
  readonly byKind: Readonly<Record<AdversarialKind, KindFigures>>
  /** the kinds with a failed branch, the most failed first (then the lower rate, then the vocabulary's order) */
  readonly mostFailed: ({ readonly kind: AdversarialKind } & KindFigures)[]
}

export const presentCounts = (counts: SurvivalCounts): SurvivalFigures => {
  const byKind = Object.fromEntries(
    ADVERSARIAL_KINDS.map((kind) => {
      const { runs, survived } = counts.byKind[kind]
      return [
        kind,
        { branches: runs, survived, failed: runs - survived, survivalRate: rateOrNull(survived, runs) },
      ]
    }),
  ) as Record<AdversarialKind, KindFigures>
  const mostFailed = ADVERSARIAL_KINDS.map((kind) => ({ kind, ...byKind[kind] }))
    .filter((k) => k.failed > 0)
    .sort((a, b) => b.failed - a.failed || (a.survivalRate ?? 1) - (b.survivalRate ?? 1))
  return {
    runs: counts.runs,
    runsPassed: counts.runsPassed,
    adversarialBranches: counts.adversarial,
    survived: counts.survived,
    failed: counts.adversarial - counts.survived,
    survivalRate: rateOrNull(counts.survived, counts.adversarial),
    byKind,
    mostFailed,
  }
}

export interface WindowRate {
  readonly start: string
  readonly survivalRate: number
}

/**
 * Where survival is heading: the survival rate of the latest window of the range that ran an adversarial branch,
 * against the one before it that ran one; change is latest minus previous, null without two such windows.
 */
export interface Trend {
  readonly latest: WindowRate | null
  readonly previous: WindowRate | null
  readonly change: number | null
}

/** Counts per window of a range, by the window's index; windows with nothing recorded are absent. */
export class WindowSeries {
  private readonly byIndex = new Map<number, SurvivalCounts>()
  private sum: SurvivalCounts = zeroCounts()

  add(index: number, counts: SurvivalCounts): void {
    this.byIndex.set(index, plus(this.byIndex.get(index) ?? zeroCounts(), counts))
    this.sum = plus(this.sum, counts)
  }

  at(index: number): SurvivalCounts {
    return this.byIndex.get(index) ?? zeroCounts()
  }

  total(): SurvivalCounts {
    return this.sum
  }

  trend(starts: readonly string[]): Trend {
    const ran = [...this.byIndex]
      .filter(([, counts]) => counts.adversarial > 0)
      .sort(([a], [b]) => a - b)
      .slice(-2)
      .map(([index, counts]) => ({
        start: starts[index] ?? '',
        survivalRate: survivalRate(counts.survived, counts.adversarial),
      }))
    const latest = ran.at(-1) ?? null
    const previous = ran.length === 2 ? (ran[0] ?? null) : null
    return {
      latest,
      previous,
      change: latest && previous ? latest.survivalRate - previous.survivalRate : null,
    }
  }
}
