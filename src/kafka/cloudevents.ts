import type { StoredEvent } from '../store/port.js'

export interface Topics {
  readonly events: string
  readonly verdicts: string
  readonly proposals: string
  readonly proposalsDlq: string
}

/** The topic names, under an optional prefix (KAFKA_TOPIC_PREFIX) for clusters shared by several installations. */
export const topicsFor = (prefix = ''): Topics => ({
  events: `${prefix}governance.events`,
  verdicts: `${prefix}governance.verdicts`,
  proposals: `${prefix}governance.proposals`,
  proposalsDlq: `${prefix}governance.proposals.dlq`,
})

export const VERDICT_TYPES: ReadonlySet<string> = new Set([
  'VerdictIssued',
  'VerdictRevoked',
  'VerdictExpired',
])
export const CE_SOURCE = 'urn:governance-ledger'
/** the ce_type of a proposal an agent publishes on governance.proposals */
export const PROPOSAL_CE_TYPE = 'governance.proposal.submit'
export const ceType = (eventType: string): string => `governance.ledger.${eventType}`

export type Headers = Record<string, string>

/**
 * A ledger event as a CloudEvent in Kafka's binary mode: the data is the message value, the envelope travels
 * in `ce_*` headers (extensions lower-case alphanumeric, as the spec requires), and the key is the stream.
 */
export const toKafkaMessage = (event: StoredEvent): { key: string; value: string; headers: Headers } => ({
  key: event.stream,
  value: JSON.stringify(event.data),
  headers: {
    ce_specversion: '1.0',
    ce_id: event.id,
    ce_source: CE_SOURCE,
    ce_type: ceType(event.type),
    ce_subject: event.stream,
    ce_time: event.recordedAt,
    'content-type': 'application/json',
    ce_position: String(event.position),
    ce_streamversion: String(event.streamVersion),
    ce_actor: event.metadata.actor,
    ce_correlationid: event.metadata.correlationId ?? '',
    ce_causationid: event.metadata.causationId ?? '',
    ce_prevhash: event.prevHash,
    ce_hash: event.hash,
  },
})

/** Reads the headers of a consumed message as strings (kafkajs hands them over as buffers). */
export const headerStrings = (headers: Record<string, unknown> | undefined): Headers => {
  const out: Headers = {}
  for (const [k, v] of Object.entries(headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v
    if (first === undefined || first === null) continue
    out[k.toLowerCase()] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first)
  }
  return out
}
