import { audit } from './audit.js'
import { authority } from './authority.js'
import { metrics } from './metrics.js'
import { openActions } from './open-actions.js'
import { survival } from './survival.js'

/** Every read model the service keeps; each is rebuildable from the ledger. */
export const projections = [authority, openActions, metrics, audit, survival] as const

export { audit, authority, metrics, openActions, survival }
