import { AUTHORITY_LADDER, type AuthorityLevel } from './events.js'

const rank = (level: AuthorityLevel): number => AUTHORITY_LADDER.indexOf(level)

/** The only rung a promotion from this level may reach; null at the top of the ladder. */
export const nextRung = (level: AuthorityLevel): AuthorityLevel | null =>
  AUTHORITY_LADDER[rank(level) + 1] ?? null

/** Where a demotion lands: one rung down, and observe stays observe. */
export const rungBelow = (level: AuthorityLevel): AuthorityLevel =>
  AUTHORITY_LADDER[rank(level) - 1] ?? 'observe'

/** An agent's level in one environment; an environment it was never promoted in is observe. */
export const levelIn = (
  levels: Readonly<Record<string, AuthorityLevel>>,
  environment: string,
): AuthorityLevel => levels[environment] ?? 'observe'
