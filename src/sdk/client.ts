import { GovernanceApiError } from './errors.js'
import { followVerdicts, type SubscribeOptions, type VerdictSubscription } from './stream.js'
import type {
  AgentAuthority,
  AgentTrackRecord,
  CommandOptions,
  CommandResult,
  EngagedKillSwitch,
  Grant,
  InclusionProof,
  Observation,
  Policy,
  RollbackTestInput,
  VerdictStreamEvent,
} from './types.js'

export interface ClientOptions {
  /** the service's address, without /v1 (e.g. https://governance.example.com) */
  readonly baseUrl: string
  /** a bearer token, or a function that returns a fresh one for each request */
  readonly token: string | (() => string | Promise<string>)
  /** defaults to the global fetch */
  readonly fetch?: typeof fetch
  /** per-request timeout; long-polls add their wait to it */
  readonly timeoutMs?: number
  /** how often a command is retried after a network error, a 429 or a 502/503/504 (safe: same Idempotency-Key) */
  readonly retries?: number
}

type Query = Record<string, string | number | boolean | undefined>

export interface RequestOptions {
  readonly query?: Query
  readonly body?: unknown
  readonly headers?: Record<string, string>
  readonly timeoutMs?: number
  readonly retries?: number
}

/** How often a command that lost an optimistic-concurrency race is sent again. */
const CONFLICT_RETRIES = 6

/** The longest the SDK waits on its own before a retry: an answer asking for longer reaches the caller at once. */
const RETRY_WAIT_MAX_MS = 5000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The base of every role's client: JSON over fetch, bearer auth, the one error shape, idempotent commands. */
export class GovernanceClient {
  readonly baseUrl: string
  protected readonly fetchImpl: typeof fetch
  private readonly tokenSource: () => string | Promise<string>
  private readonly timeoutMs: number
  private readonly retries: number

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    const { token } = options
    this.tokenSource = typeof token === 'function' ? token : () => token
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init))
    this.timeoutMs = options.timeoutMs ?? 30_000
    this.retries = options.retries ?? 2
  }

  /** The absolute URL of an API path, with its query (undefined values left out). */
  url(path: string, query: Query = {}): string {
    const url = new URL(`${this.baseUrl}${path}`)
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v))
    return url.toString()
  }

  protected async authorization(): Promise<string> {
    return `Bearer ${await this.tokenSource()}`
  }

  /** One JSON request; a non-2xx answer throws a GovernanceApiError, retryable failures are retried. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const attempts = 1 + (options.retries ?? 0)
    let conflicts = 0
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once<T>(method, path, options)
      } catch (error) {
        // a lost concurrency race appended nothing: decide again against the newer stream, soon
        if (
          error instanceof GovernanceApiError &&
          error.concurrencyConflict &&
          conflicts < CONFLICT_RETRIES
        ) {
          conflicts++
          attempt--
          await sleep(10 * 2 ** conflicts * (0.5 + Math.random()))
          continue
        }
        const retryable =
          error instanceof GovernanceApiError ? error.retryable : !(error instanceof SyntaxError)
        // no sooner than the service's Retry-After; a longer one than the SDK waits on its own is the caller's
        const backoff = Math.min(2000, 100 * 2 ** attempt)
        const after = error instanceof GovernanceApiError ? (error.retryAfterSeconds ?? 0) * 1000 : 0
        const wait = Math.max(backoff, after)
        if (!retryable || attempt >= attempts || wait > RETRY_WAIT_MAX_MS) throw error
        await sleep(wait)
      }
    }
  }

  private async once<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: await this.authorization(),
      ...options.headers,
    }
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const response = await this.fetchImpl(this.url(path, options.query), {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs),
    })
    if (!response.ok) throw await GovernanceApiError.from(response)
    if (response.status === 204) return undefined as T
    return (await response.json()) as T
  }

  /** GET under /v1. */
  protected get<T>(path: string, query?: Query, timeoutMs?: number): Promise<T> {
    return this.request<T>('GET', `/v1${path}`, {
      ...(query ? { query } : {}),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      retries: this.retries,
    })
  }

  /**
   * Follows the verdict stream (executor, auditor, policy-admin; an agent sees its own proposals' only),
   * resuming after a dropped connection with Last-Event-ID; each event is handed over once, in ledger order.
   */
  subscribe(
    onVerdict: (event: VerdictStreamEvent) => void | Promise<void>,
    options: SubscribeOptions = {},
  ): VerdictSubscription {
    const source = {
      url: this.url('/v1/verdicts/stream'),
      fetch: this.fetchImpl,
      authorization: () => this.authorization(),
    }
    return followVerdicts(source, onVerdict, options)
  }

  /** An agent's level per environment and its pending promotions (itself, policy-admin, auditor). */
  getAgent(agentId: string): Promise<AgentAuthority> {
    return this.get(`/agents/${segment(agentId)}`)
  }

  /** An agent's track record in an environment, as the ledger computes it (itself, policy-admin, auditor). */
  trackRecord(agentId: string, environment: string, days?: number): Promise<AgentTrackRecord> {
    return this.get(`/agents/${segment(agentId)}/track-record`, { environment, days })
  }

  /** The latest observation of a resource (any role). */
  latestObservation(
    environment: string,
    resource: string,
  ): Promise<Observation & { eventId: string; position: number; recordedAt: string; observedBy: string }> {
    return this.get(`/observations/${segment(environment)}/${segment(resource)}`)
  }

  /** An identity's active grants (policy-admin, auditor). */
  grants(identity: string): Promise<{ identity: string; grants: Grant[]; asOf: number }> {
    return this.get('/grants', { identity })
  }

  /** The engaged kill switches (any role). */
  killSwitches(): Promise<{ killSwitches: EngagedKillSwitch[]; asOf: number }> {
    return this.get('/kill-switches')
  }

  /** Every published policy version, oldest first (any role). */
  policies(): Promise<{
    policies: (Policy & { publishedAt: string; publishedBy: string; eventId: string })[]
  }> {
    return this.get('/policies')
  }

  /**
   * The proof that the event at `position` is in the Merkle tree of `treeSize` leaves (now, when left out),
   * with the event (executor, auditor, policy-admin); check it with verifyEventInclusion against a checkpoint's
   * tree head, not the head it arrives with.
   */
  inclusionProof(position: number, treeSize?: number): Promise<InclusionProof> {
    return this.get('/ledger/proofs/inclusion', { position, treeSize })
  }

  /** A command under /v1: always with an Idempotency-Key, so a retry can never append twice. */
  /** A rollback test, recorded by the simulator or executor that ran it (never by the agent). */
  protected postRollbackTest(proposalId: string, test: RollbackTestInput, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/proposals/${segment(proposalId)}/rollback-tests`,
      test,
      options,
    )
  }

  protected command<T>(
    method: 'POST' | 'PUT',
    path: string,
    body: unknown,
    options: CommandOptions = {},
    headers: Record<string, string> = {},
  ) {
    return this.request<T>(method, `/v1${path}`, {
      body,
      headers: { ...headers, 'idempotency-key': options.idempotencyKey ?? crypto.randomUUID() },
      retries: this.retries,
    })
  }
}

/** A path parameter as every route takes it: one segment, percent-encoded (`deployment/web` as `deployment%2Fweb`). */
export const segment = (value: string): string => encodeURIComponent(value)
