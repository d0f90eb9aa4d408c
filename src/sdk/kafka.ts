// The SDK's Kafka side, a module of its own: only it needs kafkajs; the rest of the SDK needs nothing but fetch.
import { randomUUID } from 'node:crypto'
import type { Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs'
import type { SubmitProposalInput } from '../application/proposals.js'
import { headerStrings, PROPOSAL_CE_TYPE, topicsFor } from '../kafka/cloudevents.js'
import type { ExecutorClient } from './executor.js'
import type { VerdictStreamEvent } from './types.js'
import { UnknownSigningKeyError, verifyVerdictSignature } from './verify.js'

const VERDICT_TYPES = new Set(['VerdictIssued', 'VerdictRevoked', 'VerdictExpired'])

/**
 * An agent's side of Kafka: publishes a proposal as a CloudEvent with its bearer token. The token function is
 * called on every publish: it should return a short-lived token of the Kafka audience (KAFKA_TOKEN_AUDIENCE),
 * which the HTTP API refuses, so that no token a topic keeps is worth anything on HTTP or for long.
 */
export class KafkaProposalPublisher {
  private readonly topic: string

  constructor(
    private readonly producer: Producer,
    private readonly token: () => Promise<string> | string,
    options: { readonly topicPrefix?: string; readonly source?: string } = {},
  ) {
    this.topic = topicsFor(options.topicPrefix).proposals
    this.source = options.source ?? 'urn:governance-ledger-sdk'
  }

  private readonly source: string

  /** Publishes; the proposal id (generated when absent) is the key and the idempotency key. */
  async publish(proposal: SubmitProposalInput): Promise<{ proposalId: string }> {
    const proposalId = proposal.proposalId ?? randomUUID()
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: [
        {
          key: proposalId,
          value: JSON.stringify({ ...proposal, proposalId }),
          headers: {
            ce_specversion: '1.0',
            ce_id: proposalId,
            ce_source: this.source,
            ce_type: PROPOSAL_CE_TYPE,
            'content-type': 'application/json',
            authorization: `Bearer ${await this.token()}`,
          },
        },
      ],
    })
    return { proposalId }
  }
}

export interface KafkaSubscriberStats {
  readonly received: number
  readonly delivered: number
  readonly duplicates: number
  readonly rejected: number
}

/**
 * An executor's side of Kafka: follows governance.verdicts, drops a message seen before (the event id is the
 * deduplication key: delivery is at least once) and refuses a verdict whose signature does not verify against
 * the service's keys, exactly as the SSE subscriber's events are then checked with ExecutorClient.verifyVerdict
 * before anything runs.
 */
export class KafkaVerdictSubscriber {
  private readonly seen = new Set<string>()
  private readonly counts = { received: 0, delivered: 0, duplicates: 0, rejected: 0 }
  private consumer: Consumer | null = null

  constructor(
    private readonly kafka: Kafka,
    private readonly executor: ExecutorClient,
    private readonly options: {
      readonly groupId: string
      readonly topicPrefix?: string
      readonly fromBeginning?: boolean
    },
  ) {}

  stats(): KafkaSubscriberStats {
    return { ...this.counts }
  }

  async start(
    onVerdict: (event: VerdictStreamEvent) => void | Promise<void>,
    onRejected: (reason: string, message: KafkaMessage) => void = () => {},
  ): Promise<void> {
    const consumer = this.kafka.consumer({ groupId: this.options.groupId })
    this.consumer = consumer
    await consumer.connect()
    await consumer.subscribe({
      topic: topicsFor(this.options.topicPrefix).verdicts,
      fromBeginning: this.options.fromBeginning ?? true,
    })
    await consumer.run({
      eachMessage: async ({ message }) => {
        this.counts.received += 1
        const event = this.toEvent(message)
        if (!event) return onRejected('not a verdict CloudEvent', message)
        if (this.seen.has(event.eventId)) {
          this.counts.duplicates += 1
          return
        }
        const problem = await this.signatureProblem(event)
        if (problem) {
          this.counts.rejected += 1
          return onRejected(problem, message)
        }
        await onVerdict(event)
        this.seen.add(event.eventId)
        this.counts.delivered += 1
      },
    })
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect()
    this.consumer = null
  }

  private toEvent(message: KafkaMessage): VerdictStreamEvent | null {
    const h = headerStrings(message.headers)
    const type = h.ce_type?.replace(/^governance\.ledger\./, '') ?? ''
    if (h.ce_specversion !== '1.0' || !h.ce_id || !VERDICT_TYPES.has(type)) return null
    try {
      return {
        position: Number(h.ce_position),
        eventId: h.ce_id,
        recordedAt: String(h.ce_time),
        type,
        data: JSON.parse(message.value?.toString('utf8') ?? ''),
      } as VerdictStreamEvent
    } catch {
      return null
    }
  }

  /** Only the signature is judged here; whether the verdict allows the caller's plan is judged before acting. */
  private async signatureProblem(event: VerdictStreamEvent): Promise<string | null> {
    if (event.type !== 'VerdictIssued') return null
    const verify = async (refresh: boolean) => {
      const jwks = await this.executor.signingKeys(refresh)
      return verifyVerdictSignature(event.data, jwks)
    }
    const result = await verify(false).catch((error: unknown) => {
      if (error instanceof UnknownSigningKeyError) return verify(true)
      throw error
    })
    if (result.ok || result.reason === 'not-allowed') return null
    return `${result.reason}: ${result.message}`
  }
}
