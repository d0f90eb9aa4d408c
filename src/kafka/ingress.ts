import type { Consumer, EachMessagePayload, IHeaders, KafkaMessage, Producer } from 'kafkajs'
import type { Logger } from 'pino'
import { answersRequest, scopedIdempotency } from '../application/idempotency.js'
import { SubmitProposalInput, submitProposal } from '../application/proposals.js'
import { AuthenticationError, type Principal, type TokenVerifier } from '../auth/tokens.js'
import { DomainError } from '../domain/errors.js'
import { Identifier } from '../domain/events.js'
import { parseJsonStrictly } from '../domain/strict-json.js'
import { type EventStore, WrongExpectedVersionError } from '../store/port.js'
import { backoffMs, sleep } from './backoff.js'
import {
  type Headers,
  headerStrings,
  JSON_MEDIA_TYPE,
  mediaTypeOf,
  PROPOSAL_CE_TYPE,
  STRUCTURED_MEDIA_TYPE,
  type Topics,
} from './cloudevents.js'

/** Why a message cannot be taken: it goes to the DLQ with this reason. */
export class Rejected extends Error {
  override readonly name = 'Rejected'
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Something the ingress cannot work without does not answer: the message waits for it, never skipped. */
export class Unavailable extends Error {
  override readonly name = 'Unavailable'
  constructor(what: string, cause: unknown) {
    super(`${what} does not answer (${describe(cause)})`, { cause })
  }
}

/** What becomes of one message: taken (appended, or recalled as a retry), or refused with a reason. */
export type Outcome =
  | { readonly taken: true; readonly proposalId: string; readonly duplicate: boolean }
  | { readonly taken: false; readonly code: string; readonly reason: string }

/**
 * The one reading of a message value as JSON, as strict as HTTP's (no duplicate keys, lone surrogates,
 * inexact numbers or excessive depth): whatever it throws refuses the message as invalid.
 */
export const parseJson = (text: string): unknown => parseJsonStrictly(text)

/** Errors JavaScript raises on a value it cannot handle: the same message raises them again, they are its own. */
const VALUE_ERRORS = [TypeError, RangeError, SyntaxError]
const isValueError = (error: unknown): boolean => VALUE_ERRORS.some((E) => error instanceof E)

const describe = (error: unknown): string => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return text.length > 300 ? `${text.slice(0, 300)}...` : text
}

/**
 * The ledger as the ingress calls it: an error the ledger raises is an outage (Unavailable), unless a value
 * caused it (a TypeError, say) or it is the stream's version moving under a command.
 */
export const ledgerCalls = (store: EventStore): EventStore => {
  const outage = (error: unknown): never => {
    if (error instanceof WrongExpectedVersionError || isValueError(error)) throw error
    throw new Unavailable('the ledger', error)
  }
  return new Proxy(store, {
    get(target, property, receiver) {
      const member: unknown = Reflect.get(target, property, receiver)
      if (typeof member !== 'function') return member
      return (...args: unknown[]) => {
        try {
          const result: unknown = member.apply(target, args)
          return result instanceof Promise ? result.catch(outage) : result
        } catch (error) {
          return outage(error)
        }
      }
    },
  })
}

/** A CloudEvent's envelope as the ingress reads it, in either mode. */
interface Envelope {
  readonly id: string
  readonly data: unknown
}

/** The longest CloudEvent id kept: it becomes the events' correlation id. */
const MAX_ID = 200
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * One message of governance.proposals judged on its own: authenticated with a Kafka token, validated exactly
 * like POST /v1/proposals and appended idempotently, or refused with a reason. Nothing a message holds makes
 * it throw: it throws Unavailable only, when the ledger or the token keys do not answer and it must wait.
 */
export class Intake {
  private readonly ledger: EventStore

  constructor(
    store: EventStore,
    private readonly verifier: TokenVerifier,
    private readonly maxBytes: number,
  ) {
    this.ledger = ledgerCalls(store)
  }

  async examine(message: Pick<KafkaMessage, 'value' | 'headers'>): Promise<Outcome> {
    try {
      return { taken: true, ...(await this.accept(message)) }
    } catch (error) {
      if (error instanceof Unavailable) throw error
      if (error instanceof WrongExpectedVersionError)
        throw new Unavailable('the proposal stream, written by others meanwhile,', error)
      if (error instanceof DomainError && error.code === 'unavailable')
        throw new Unavailable('the service', error)
      const refusal =
        error instanceof Rejected
          ? error
          : error instanceof DomainError
            ? new Rejected(error.code, error.message)
            : // whatever else this message made the code throw is its own fault: it never stops the partition
              new Rejected('unprocessable', `the message could not be processed: ${describe(error)}`)
      return { taken: false, code: refusal.code, reason: refusal.message }
    }
  }

  private async accept(
    message: Pick<KafkaMessage, 'value' | 'headers'>,
  ): Promise<{ proposalId: string; duplicate: boolean }> {
    const { value } = message
    if (!value) throw new Rejected('invalid', 'the message has no value')
    if (value.length > this.maxBytes)
      throw new Rejected(
        'oversized',
        `the message has ${value.length} bytes; at most ${this.maxBytes} are accepted`,
      )
    const headers = headerStrings(message.headers)
    const structured = structuredMode(headers)
    const binary = structured ? null : binaryEnvelope(headers)
    const principal = await this.authenticate(headers)
    const body = readJson(value)
    const event = binary ? { ...binary, data: body } : structuredEnvelope(body)
    const parsed = SubmitProposalInput.safeParse(event.data)
    if (!parsed.success) {
      throw new Rejected(
        'invalid',
        parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; '),
      )
    }
    const proposalId = parsed.data.proposalId ?? event.id
    // the CloudEvent id stands for the proposal id only when it is one: the ledger never holds an id it cannot read back
    if (!Identifier.safeParse(proposalId).success) {
      throw new Rejected(
        'invalid',
        `ce_id ${JSON.stringify(proposalId).slice(0, 80)} is not a proposal id: set proposalId`,
      )
    }
    const proposal = { ...parsed.data, proposalId }
    // the proposal id is the principal's idempotency key on Kafka, bound to the proposal it was first sent with
    const idempotency = scopedIdempotency('kafka', principal.sub, proposalId, {
      type: PROPOSAL_CE_TYPE,
      proposal,
    })
    const { result } = await submitProposal(this.ledger, principal, proposal, {
      ...idempotency,
      correlationId: event.id,
    })
    if (!answersRequest(result, idempotency)) {
      throw new Rejected(
        'idempotency-key-reused',
        `proposal ${proposalId} was already submitted by this principal with another body; nothing was appended: send a new proposal id`,
      )
    }
    return { proposalId, duplicate: result.duplicate }
  }

  private async authenticate(headers: Headers): Promise<Principal> {
    const token = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1]
    if (!token)
      throw new Rejected('unauthenticated', 'an authorization header with a bearer token is required')
    try {
      return await this.verifier.verify(token)
    } catch (error) {
      if (error instanceof AuthenticationError) throw new Rejected('unauthenticated', error.message)
      throw new Unavailable('the token keys', error)
    }
  }
}

/** The content type, checked as HTTP checks it: JSON read as UTF-8, the event in headers or in the value. */
const structuredMode = (headers: Headers): boolean => {
  const given = headers['content-type']
  const media = mediaTypeOf(given)
  if (media?.type !== STRUCTURED_MEDIA_TYPE && headers.ce_specversion === undefined) {
    throw new Rejected(
      'not-a-cloudevent',
      `a CloudEvent is expected: in binary mode (ce_* headers, content-type ${JSON_MEDIA_TYPE}) or in structured mode (content-type ${STRUCTURED_MEDIA_TYPE})`,
    )
  }
  if (media?.type !== STRUCTURED_MEDIA_TYPE && media?.type !== JSON_MEDIA_TYPE) {
    throw new Rejected(
      'unsupported-media-type',
      `content-type ${JSON.stringify(given ?? null).slice(0, 100)}: a proposal is ${JSON_MEDIA_TYPE} (binary mode) or ${STRUCTURED_MEDIA_TYPE} (structured mode)`,
    )
  }
  requireUtf8(media.charset)
  return media.type === STRUCTURED_MEDIA_TYPE
}

const requireUtf8 = (charset: string | null): void => {
  if (charset !== null && charset !== 'utf-8')
    throw new Rejected(
      'unsupported-media-type',
      `charset ${JSON.stringify(charset).slice(0, 40)}: JSON is read as UTF-8 only`,
    )
}

/** Binary mode: the envelope in ce_* headers, the data in the value. */
const binaryEnvelope = (headers: Headers): Omit<Envelope, 'data'> => {
  if (headers.ce_specversion !== '1.0') throw new Rejected('not-a-cloudevent', 'ce_specversion must be 1.0')
  if (headers.ce_type !== PROPOSAL_CE_TYPE)
    throw new Rejected('unexpected-type', `ce_type must be ${PROPOSAL_CE_TYPE}`)
  return { id: envelopeId(headers.ce_id, headers.ce_source, 'ce_') }
}

/** Structured mode: the whole value is the event, the proposal in its data, as JSON. */
const structuredEnvelope = (body: unknown): Envelope => {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new Rejected('not-a-cloudevent', 'a structured CloudEvent is a JSON object')
  const event = body as Record<string, unknown>
  if (event.specversion !== '1.0') throw new Rejected('not-a-cloudevent', 'specversion must be 1.0')
  if (event.type !== PROPOSAL_CE_TYPE)
    throw new Rejected('unexpected-type', `type must be ${PROPOSAL_CE_TYPE}`)
  const id = envelopeId(event.id, event.source, '')
  if ('data_base64' in event)
    throw new Rejected('unsupported-media-type', 'data_base64 is not accepted: the proposal is JSON in data')
  if (event.datacontenttype !== undefined) {
    const media = mediaTypeOf(typeof event.datacontenttype === 'string' ? event.datacontenttype : undefined)
    if (media?.type !== JSON_MEDIA_TYPE)
      throw new Rejected(
        'unsupported-media-type',
        `datacontenttype ${JSON.stringify(event.datacontenttype).slice(0, 100)}: a proposal is ${JSON_MEDIA_TYPE}`,
      )
    requireUtf8(media.charset)
  }
  if (!('data' in event)) throw new Rejected('invalid', 'the CloudEvent has no data: the proposal goes there')
  return { id, data: event.data }
}

const envelopeId = (id: unknown, source: unknown, prefix: string): string => {
  if (typeof id !== 'string' || id === '' || typeof source !== 'string' || source === '')
    throw new Rejected('not-a-cloudevent', `${prefix}id and ${prefix}source are required`)
  if (id.length > MAX_ID)
    throw new Rejected('not-a-cloudevent', `${prefix}id has ${id.length} characters; at most ${MAX_ID}`)
  return id
}

const readJson = (value: Buffer): unknown => {
  let text: string
  try {
    text = UTF8.decode(value)
  } catch {
    throw new Rejected('invalid', 'the message value is not UTF-8')
  }
  try {
    return parseJson(text)
  } catch (error) {
    throw new Rejected('invalid', `the message value is not JSON: ${describe(error)}`)
  }
}

/** The headers a DLQ entry copies: the CloudEvent's own and the content type. Others, the token first, are named only. */
export const DLQ_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'ce_specversion',
  'ce_id',
  'ce_source',
  'ce_type',
  'ce_subject',
  'ce_time',
  'ce_dataschema',
])
/** A larger value is left out of its DLQ entry (dlq_value_bytes says how large): the DLQ write must fit a request. */
const DLQ_VALUE_BYTES = 768 * 1024
const REDACTED_NAMES = 20

/**
 * The headers of a DLQ entry from a message's: the allowed ones copied (an empty one left out), the names of
 * the others listed.
 */
export const dlqHeaders = (headers: IHeaders | undefined): Record<string, string | Buffer> => {
  const kept: Record<string, string | Buffer> = {}
  const redacted: string[] = []
  for (const [name, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value
    if (first === undefined || first === null) continue
    if (DLQ_HEADERS.has(name.toLowerCase())) {
      if (first.length > 0) kept[name] = first
    } else redacted.push(name.replace(/[^\w.-]/g, '?').slice(0, 64))
  }
  if (redacted.length > 0) kept.dlq_redacted = redacted.slice(0, REDACTED_NAMES).join(',')
  return kept
}

export interface IngressStats {
  readonly accepted: number
  readonly rejected: number
  /** how often the consumer was started again after a crash */
  readonly restarts: number
}

/**
 * The Kafka ingress: a consumer group on governance.proposals that never dies of a message. Each message is
 * judged by the Intake: taken, or sent to the DLQ with its reason, and the partition moves on. A step that
 * cannot be done now (the ledger or the DLQ does not answer) is tried again with backoff, the message never
 * skipped: kafkajs commits an offset only after eachMessage resolves. A consumer that crashes is started
 * again with backoff; `failure` says why the ingress is not consuming meanwhile.
 */
export class Ingress {
  private consumer: Consumer | null = null
  private stopping = false
  private restartTimer: NodeJS.Timeout | null = null
  private restartAttempt = 0
  private consumerFailure: string | null = null
  private messageFailure: string | null = null
  private readonly counts = { accepted: 0, rejected: 0, restarts: 0 }

  constructor(
    private readonly makeConsumer: () => Consumer,
    private readonly producer: Producer,
    private readonly topics: Topics,
    private readonly intake: Intake,
    private readonly log: Logger,
  ) {}

  /** Why the ingress is not consuming now (its consumer is down or restarting, a message waits), or null. */
  get failure(): string | null {
    return this.consumerFailure ?? this.messageFailure
  }

  stats(): IngressStats {
    return { ...this.counts }
  }

  async start(): Promise<void> {
    this.stopping = false
    await this.launch()
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.restartTimer) clearTimeout(this.restartTimer)
    await this.consumer?.disconnect()
    this.consumer = null
  }

  private async launch(): Promise<void> {
    const consumer = this.makeConsumer()
    this.consumer = consumer
    consumer.on(consumer.events.CRASH, ({ payload }) =>
      this.crashed(consumer, payload.error, payload.restart),
    )
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (this.consumer !== consumer) return
      this.consumerFailure = null
      this.restartAttempt = 0
    })
    await consumer.connect()
    await consumer.subscribe({ topic: this.topics.proposals, fromBeginning: true })
    await consumer.run({ eachMessage: (payload) => this.take(payload) })
  }

  private crashed(consumer: Consumer, error: Error, restarting: boolean): void {
    if (this.stopping || this.consumer !== consumer) return
    this.consumerFailure = `the ingress consumer crashed (${describe(error)}); it restarts`
    this.log.error({ err: error }, 'ingress: the consumer crashed; restarting it')
    // kafkajs restarts it on its own only where asked to; otherwise it is started again here
    if (!restarting) this.restartLater(consumer)
  }

  private restartLater(previous: Consumer): void {
    this.restartAttempt += 1
    const attempt = this.restartAttempt
    this.restartTimer = setTimeout(() => void this.restart(previous, attempt), backoffMs(attempt))
  }

  private async restart(previous: Consumer, attempt: number): Promise<void> {
    if (this.stopping) return
    await previous.disconnect().catch(() => undefined)
    try {
      await this.launch()
      this.counts.restarts += 1
    } catch (error) {
      if (this.stopping) return
      this.consumerFailure = `the ingress consumer could not start again (attempt ${attempt}: ${describe(error)}); it retries`
      this.log.error({ err: error, attempt }, 'ingress: the consumer did not start again; retrying')
      this.restartLater(this.consumer ?? previous)
    }
  }

  private async take({ message, partition, heartbeat }: EachMessagePayload): Promise<void> {
    const outcome = await this.patiently(heartbeat, () => this.intake.examine(message))
    if (outcome.taken) {
      this.counts.accepted += 1
      this.log.debug(
        { proposalId: outcome.proposalId, partition, offset: message.offset },
        'ingress: proposal taken',
      )
      return
    }
    await this.patiently(heartbeat, () => this.deadLetter(message, partition, outcome))
    this.counts.rejected += 1
  }

  /** Runs a step until it is done; while what it needs does not answer, the message waits, with backoff. */
  private async patiently<T>(heartbeat: () => Promise<void>, step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const result = await step()
        this.messageFailure = null
        return result
      } catch (error) {
        // stopping, the message is left uncommitted: the next start takes it again
        if (!(error instanceof Unavailable) || this.stopping) throw error
        this.messageFailure = `${error.message}: a message waits`
        this.log.warn({ err: error, attempt }, 'ingress: a message waits')
        await sleep(backoffMs(attempt))
        await heartbeat()
      }
    }
  }

  private async deadLetter(
    message: KafkaMessage,
    partition: number,
    refusal: Extract<Outcome, { taken: false }>,
  ): Promise<void> {
    const size = message.value?.length ?? 0
    const keep = size <= DLQ_VALUE_BYTES
    try {
      await this.producer.send({
        topic: this.topics.proposalsDlq,
        acks: -1,
        messages: [
          {
            key: message.key,
            value: keep ? message.value : null,
            headers: {
              ...dlqHeaders(message.headers),
              dlq_reason: refusal.reason.slice(0, 2000),
              dlq_code: refusal.code,
              dlq_topic: this.topics.proposals,
              dlq_partition: String(partition),
              dlq_offset: message.offset,
              ...(keep ? {} : { dlq_value_bytes: String(size) }),
            },
          },
        ],
      })
    } catch (error) {
      throw new Unavailable('the DLQ', error)
    }
    this.log.warn(
      { code: refusal.code, reason: refusal.reason, partition, offset: message.offset },
      'ingress: message sent to the DLQ',
    )
  }
}
