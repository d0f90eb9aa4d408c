import type { BranchKind, DataOf } from './events.js'

/**
 * What one simulation run says about survival: its adversarial branches (every kind but the baseline, which
 * shows only that the plan works) and how many survived. The one definition the survival check, the track
 * record, the branch survival projection and the release gate count by.
 */
export interface RunSurvival {
  readonly adversarial: number
  readonly survived: number
  /** survived over adversarial; 1 when no adversarial branch ran (there was nothing to fail) */
  readonly rate: number
  /** at least one adversarial branch ran, and every one survived */
  readonly passed: boolean
  /** per adversarial branch kind: branches run and branches survived */
  readonly byKind: Readonly<Partial<Record<AdversarialKind, KindCount>>>
}

export type AdversarialKind = Exclude<BranchKind, 'baseline'>

export interface KindCount {
  readonly runs: number
  readonly survived: number
}

type Branch = DataOf<'SimulationRecorded'>['branches'][number]

/** Survived over run; 1 when none ran. */
export const survivalRate = (survived: number, run: number): number => (run === 0 ? 1 : survived / run)

export const isAdversarial = (branch: Pick<Branch, 'kind'>): boolean => branch.kind !== 'baseline'

export const runSurvival = (branches: readonly Pick<Branch, 'kind' | 'outcome'>[]): RunSurvival => {
  const byKind: Partial<Record<AdversarialKind, KindCount>> = {}
  let adversarial = 0
  let survived = 0
  for (const branch of branches) {
    if (branch.kind === 'baseline') continue
    const ok = branch.outcome === 'survived' ? 1 : 0
    adversarial += 1
    survived += ok
    const count = byKind[branch.kind] ?? { runs: 0, survived: 0 }
    byKind[branch.kind] = { runs: count.runs + 1, survived: count.survived + ok }
  }
  return {
    adversarial,
    survived,
    rate: survivalRate(survived, adversarial),
    passed: adversarial > 0 && survived === adversarial,
    byKind,
  }
}
