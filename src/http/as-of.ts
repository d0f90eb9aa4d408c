import { MomentText } from '../application/as-of.js'

/** The query parameter of every read that serves a projection. */
export const asOfQuery = {
  asOf: MomentText.optional().describe(
    'answer as of a past moment: a ledger position (a non-negative integer, at most the head), or an ISO 8601 UTC time (not in the future), which stands for the last position recorded at or before it; before the first event the read models are empty. Default: now',
  ),
}
