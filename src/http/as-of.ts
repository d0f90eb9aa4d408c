import { z } from 'zod'
import { MomentText } from '../application/as-of.js'

/** The query parameter of every read that serves a projection. */
export const asOfQuery = {
  asOf: MomentText.optional().describe(
    'answer as of a past moment: a ledger position (a non-negative integer, at most the head), or an ISO 8601 UTC time (not in the future), which stands for the last position recorded at or before it; before the first event the read models are empty. Default: now',
  ),
}

/** The query of a read over windows: their size, the range they cover, and the moment it is read as of. */
export const windowRangeQuery = (byDefault: 'hour' | 'day') => ({
  window: z.enum(['hour', 'day']).default(byDefault),
  from: z.iso.datetime().optional().describe('default: 24 hours (hour) or 30 days (day) before to'),
  to: z.iso
    .datetime()
    .optional()
    .describe('default: now (or the time of asOf); the window holding it is included'),
  ...asOfQuery,
})
