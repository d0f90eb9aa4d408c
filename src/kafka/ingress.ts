import type { Consumer, KafkaMessage, Producer } from 'kafkajs'
import type { Logger } from 'pino'
import { SubmitProposalInput, submitProposal } from '../application/proposals.js'
import { AuthenticationError, type TokenVerifier } from '../auth/tokens.js'
import { DomainError } from '../domain/errors.js'
import { Identifier } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { headerStrings, PROPOSAL_CE_TYPE, type Topics } from './cloudevents.js'

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

export interface IngressStats {
  readonly accepted: number
  readonly rejected: number
}

/**
 * The Kafka ingress: a consumer group on governance.proposals. Each message carries a CloudEvent (binary
 * mode) and a bearer token; it is authenticated and validated exactly like the HTTP route and appended
 * idempotently (the proposal id is the idempotency key). A message that fails any of that goes to the DLQ
 * with its payload, its headers (the token redacted) and the reason. kafkajs commits an offset only after
 * eachMessage resolves, so nothing is lost: the append or the DLQ write comes first.
 */
export class Ingress {
  private accepted = 0
  private rejected = 0

  constructor(
    private readonly consumer: Consumer,
    private readonly producer: Producer,
    private readonly topics: Topics,
    private readonly store: EventStore,
    private readonly verifier: TokenVerifier,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  stats(): IngressStats {
    return { accepted: this.accepted, rejected: this.rejected }
  }

  async start(): Promise<void> {
    await this.consumer.subscribe({ topic: this.topics.proposals, fromBeginning: true })
    await this.consumer.run({
      eachMessage: async ({ message, partition }) => this.take(message, partition),
    })
  }

  async take(message: KafkaMessage, partition: number): Promise<void> {
    try {
      const { proposalId } = await this.accept(message)
      this.accepted += 1
      this.log.debug({ proposalId, partition, offset: message.offset }, 'ingress: proposal appended')
    } catch (error) {
      // anything but a rejection (the ledger unavailable, say) is thrown: the offset stays, the message returns
      if (!(error instanceof Rejected)) throw error
      await this.deadLetter(message, partition, error)
      this.rejected += 1
    }
  }

  private async accept(message: KafkaMessage): Promise<{ proposalId: string }> {
    const size = message.value?.length ?? 0
    if (size > this.maxBytes)
      throw new Rejected('oversized', `the message has ${size} bytes; at most ${this.maxBytes} are accepted`)
    const headers = headerStrings(message.headers)
    if (headers.ce_specversion !== '1.0') throw new Rejected('not-a-cloudevent', 'ce_specversion must be 1.0')
    if (headers.ce_type !== PROPOSAL_CE_TYPE)
      throw new Rejected('unexpected-type', `ce_type must be ${PROPOSAL_CE_TYPE}`)
    if (!headers.ce_id || !headers.ce_source)
      throw new Rejected('not-a-cloudevent', 'ce_id and ce_source are required')
    const token = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1]
    if (!token)
      throw new Rejected('unauthenticated', 'an authorization header with a bearer token is required')
    const principal = await this.verifier.verify(token).catch((error: unknown) => {
      throw error instanceof AuthenticationError ? new Rejected('unauthenticated', error.message) : error
    })
    let body: unknown
    try {
      body = JSON.parse(message.value?.toString('utf8') ?? '')
    } catch {
      throw new Rejected('invalid', 'the message value is not JSON')
    }
    const parsed = SubmitProposalInput.safeParse(body)
    if (!parsed.success) {
      throw new Rejected(
        'invalid',
        parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '),
      )
    }
    const proposalId = parsed.data.proposalId ?? headers.ce_id
    // the CloudEvent id stands for the proposal id only when it is one: the ledger never holds an id it cannot read back
    if (!Identifier.safeParse(proposalId).success) {
      throw new Rejected(
        'invalid',
        `ce_id ${JSON.stringify(proposalId).slice(0, 80)} is not a proposal id: set proposalId`,
      )
    }
    try {
      await submitProposal(
        this.store,
        principal,
        { ...parsed.data, proposalId },
        {
          idempotencyKey: `proposal:${proposalId}`,
          correlationId: headers.ce_id,
        },
      )
    } catch (error) {
      if (error instanceof DomainError) throw new Rejected(error.code, error.message)
      throw error
    }
    return { proposalId }
  }

  private async deadLetter(message: KafkaMessage, partition: number, reason: Rejected): Promise<void> {
    const headers: Record<string, string | Buffer> = {}
    for (const [k, v] of Object.entries(message.headers ?? {})) {
      const first = Array.isArray(v) ? v[0] : v
      if (first !== undefined && first !== null)
        headers[k] = k.toLowerCase() === 'authorization' ? '[redacted]' : first
    }
    await this.producer.send({
      topic: this.topics.proposalsDlq,
      acks: -1,
      messages: [
        {
          key: message.key,
          value: message.value,
          headers: {
            ...headers,
            dlq_reason: reason.message,
            dlq_code: reason.code,
            dlq_topic: this.topics.proposals,
            dlq_partition: String(partition),
            dlq_offset: message.offset,
          },
        },
      ],
    })
    this.log.warn(
      { code: reason.code, reason: reason.message, partition, offset: message.offset },
      'ingress: message sent to the DLQ',
    )
  }
}
