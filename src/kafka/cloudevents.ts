import type { StoredEvent } from '../store/port.js'

export interface Topics {
  readonly events: string
  readonly verdicts: string
  readonly proposals: string
  readonly proposalsDlq: string
  /** the signed checkpoints of the ledger's Merkle tree, for witnesses */
  readonly checkpoints: string
}

/** The topic names, under an optional prefix (KAFKA_TOPIC_PREFIX) for clusters shared by several installations. */
export const topicsFor = (prefix = ''): Topics => ({
  events: `${prefix}governance.events`,
  verdicts: `${prefix}governance.verdicts`,
  proposals: `${prefix}governance.proposals`,
  proposalsDlq: `${prefix}governance.proposals.dlq`,
  checkpoints: `${prefix}governance.checkpoints`,
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

/** The headers that have a value: an attribute an event lacks is left out, never sent empty. */
const present = (headers: Record<string, string | null | undefined>): Headers => {
  const out: Headers = {}
  for (const [name, value] of Object.entries(headers)) if (value) out[name] = value
  return out
}

/**
 * A ledger event as a CloudEvent in Kafka's binary mode: the data is the message value, the envelope travels
 * in `ce_*` headers (extensions lower-case alphanumeric, as the spec requires), and the key is the stream.
 * An event without a correlation or causation id has no such header.
 */
export const toKafkaMessage = (event: StoredEvent): { key: string; value: string; headers: Headers } => ({
  key: event.stream,
  value: JSON.stringify(event.data),
  headers: present({
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
    ce_correlationid: event.metadata.correlationId,
    ce_causationid: event.metadata.causationId,
    ce_prevhash: event.prevHash,
    ce_hash: event.hash,
  }),
})

/** the ce_type of a signed checkpoint on governance.checkpoints */
export const CHECKPOINT_CE_TYPE = 'governance.ledger.checkpoint'

/**
 * A signed checkpoint as a CloudEvent in binary mode: the signed note is the value (text/plain), keyed by the
 * log's origin so that every checkpoint of one log lands on one partition, in the order they were cut.
 */
export const checkpointMessage = (
  checkpoint: { readonly origin: string; readonly size: number },
  note: string,
  cutAt: string,
): { key: string; value: string; headers: Headers } => ({
  key: checkpoint.origin,
  value: note,
  headers: present({
    ce_specversion: '1.0',
    ce_id: `${checkpoint.origin}/${checkpoint.size}`,
    ce_source: CE_SOURCE,
    ce_type: CHECKPOINT_CE_TYPE,
    ce_subject: checkpoint.origin,
    ce_time: cutAt,
    'content-type': 'text/plain; charset=utf-8',
    ce_treesize: String(checkpoint.size),
  }),
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

/** The data of a proposal in binary mode, and a whole CloudEvent in structured mode. */
export const JSON_MEDIA_TYPE = 'application/json'
export const STRUCTURED_MEDIA_TYPE = 'application/cloudevents+json'

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const MEDIA_TYPE = new RegExp(`^\\s*(${TOKEN}/${TOKEN})\\s*((?:;[^;]*)*)$`)

/**
 * A content-type read as HTTP reads one (RFC 9110): the media type, lower-case, and the charset parameter,
 * lower-case and unquoted, when there is one; null when the header is absent or is not a media type.
 */
export const mediaTypeOf = (header: string | undefined): { type: string; charset: string | null } | null => {
  const match = MEDIA_TYPE.exec(header ?? '')
  if (!match?.[1]) return null
  let charset: string | null = null
  for (const parameter of (match[2] ?? '').split(';').slice(1)) {
    const [name = '', ...value] = parameter.split('=')
    if (name.trim().toLowerCase() === 'charset')
      charset = value
        .join('=')
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase()
  }
  return { type: match[1].toLowerCase(), charset }
}
