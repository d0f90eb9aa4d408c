import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { streams } from '../../domain/events.js'
import type { EventStore, StoredEvent, Subscription } from '../../store/port.js'
import { authorize, hasRole, principalOf } from '../auth.js'
import { ConnectionSlots } from '../connections.js'
import { ApiError } from '../errors.js'
import { busyResponses, readErrors } from '../schemas.js'

export const VERDICT_EVENT_TYPES: ReadonlySet<string> = new Set([
  'VerdictIssued',
  'VerdictRevoked',
  'VerdictExpired',
])

/** A comment line this often keeps proxies and idle timers from closing a quiet stream. */
export const HEARTBEAT_MS = 15_000

/** Proposals whose agent one stream remembers, so revocations need no ledger read. */
const AGENT_CACHE_SIZE = 10_000

const Position = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,14})$/, 'a ledger position: a non-negative integer')
  .transform(Number)

const StreamHeaders = z.looseObject({
  'last-event-id': Position.optional().describe('resume after this ledger position (sent by EventSource)'),
})
const StreamQuery = z.object({
  after: Position.optional().describe(
    'resume after this ledger position when no Last-Event-ID is sent; 0 for the whole history',
  ),
})

/** How soon a stream refused for want of a slot may try again. */
const STREAM_RETRY_AFTER_SECONDS = 5

/** The reconnection delay a stream asks of its client (`retry:`), as the 503s' Retry-After does. */
export const STREAM_RECONNECT_MS = 1000

/** One Server-Sent Event: id = ledger position, event = verdict event type. */
export const formatVerdictEvent = (e: StoredEvent): string => {
  const data = { position: e.position, eventId: e.id, recordedAt: e.recordedAt, type: e.type, data: e.data }
  return `id: ${e.position}\nevent: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`
}

class StreamClosed extends Error {
  override readonly name = 'StreamClosed'
}

/**
 * Gathers formatted events into pages of at most `budget` bytes (a page holds at least one event), and
 * writes each page before it gathers the next.
 */
export const pagedWriter = (write: (chunk: string) => Promise<void>, budget: number) => {
  let page: string[] = []
  let bytes = 0
  const flush = async () => {
    if (page.length === 0) return
    const chunk = page.join('')
    page = []
    bytes = 0
    await write(chunk)
  }
  return {
    add: async (text: string) => {
      const size = Buffer.byteLength(text)
      if (page.length > 0 && bytes + size > budget) await flush()
      page.push(text)
      bytes += size
    },
    flush,
  }
}

/** Writes with backpressure: resolves once the socket took the chunk, rejects once the client is gone. */
const writer = (raw: ServerResponse) => (chunk: string) =>
  new Promise<void>((resolve, reject) => {
    if (raw.destroyed || raw.writableEnded) {
      reject(new StreamClosed('the client is gone'))
      return
    }
    if (raw.write(chunk)) {
      resolve()
      return
    }
    const settle = () => {
      raw.off('drain', settle)
      raw.off('close', settle)
      if (raw.destroyed) reject(new StreamClosed('the client is gone'))
      else resolve()
    }
    raw.once('drain', settle)
    raw.once('close', settle)
  })

/** Decides, per event, whether an agent may see it: only verdicts of its own proposals. */
const agentFilter = (store: EventStore, agentId: string) => {
  const owners = new Map<string, string>()
  const remember = (proposalId: string, owner: string) => {
    owners.set(proposalId, owner)
    if (owners.size > AGENT_CACHE_SIZE) {
      const oldest = owners.keys().next().value
      if (oldest !== undefined) owners.delete(oldest)
    }
  }
  return async (e: StoredEvent): Promise<boolean> => {
    const data = e.data as { proposalId?: unknown; agentId?: unknown }
    const proposalId = String(data.proposalId)
    if (e.type === 'VerdictIssued') {
      remember(proposalId, String(data.agentId))
      return data.agentId === agentId
    }
    let owner = owners.get(proposalId)
    if (owner === undefined) {
      const [first] = await store.readStream(streams.proposal(proposalId))
      owner = String((first?.data as { agentId?: unknown } | undefined)?.agentId)
      remember(proposalId, owner)
    }
    return owner === agentId
  }
}

export const verdictStreamRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, config } = app.runtime
  const open = new Set<{ end(): Promise<void> }>()
  const slots = new ConnectionSlots({
    what: 'verdict streams',
    perPrincipal: config.STREAM_MAX_PER_PRINCIPAL,
    total: config.STREAM_MAX_TOTAL,
    retryAfterSeconds: STREAM_RETRY_AFTER_SECONDS,
  })

  // end every stream cleanly before the server drops connections
  app.addHook('preClose', async () => {
    await Promise.all([...open].map((s) => s.end()))
  })

  app.get(
    '/verdicts/stream',
    {
      preValidation: authorize('executor', 'auditor', 'policy-admin', 'agent'),
      schema: {
        tags: ['verdicts'],
        operationId: 'streamVerdicts',
        summary: 'Server-Sent Events of VerdictIssued, VerdictRevoked and VerdictExpired, in ledger order',
        description:
          'Each event has id = ledger position, event = its type and data = {position, eventId, recordedAt, type, data}. ' +
          'A new stream starts at the ledger head: it opens with `id: <head>` and sends the verdicts that follow. ' +
          'Resume with the Last-Event-ID header (or ?after=position); ?after=0 replays the whole history, ' +
          'in pages bounded by bytes. An agent receives only the verdicts of its own proposals. ' +
          'A comment line is sent every 15 s. Streams are capped per principal (429) and in all (503).',
        headers: StreamHeaders,
        querystring: StreamQuery,
        response: {
          200: {
            description: 'the verdict events, as they are recorded, until the client leaves',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          ...readErrors(400, 401, 403),
          ...busyResponses,
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const release = slots.take(principal.sub)
      let after: number
      try {
        // history only when asked for: a new stream starts at the head
        const head = (await store.head()).position
        after = request.headers['last-event-id'] ?? request.query.after ?? head
        // a position the ledger has not reached (another installation's, or one from before a restore) would
        // silently stream nothing until the ledger got there: revocations would be missed
        if (after > head)
          throw new ApiError(
            'invalid',
            `cannot resume after position ${after}: the ledger's head is ${head}; resume from a position it holds`,
          )
      } catch (error) {
        release()
        throw error
      }
      // an agent with no wider role sees only its own proposals' verdicts
      const onlyAgent = hasRole(principal, 'executor', 'auditor', 'policy-admin') ? null : principal.sub
      const visible = onlyAgent === null ? null : agentFilter(store, onlyAgent)
      reply.hijack()
      const raw = reply.raw
      // what the hooks set before the stream took the reply over (CORS, rate-limit headers) goes out with it
      const set = Object.entries(reply.getHeaders()).filter(([, v]) => v !== undefined)
      raw.writeHead(200, {
        ...Object.fromEntries(set),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
        'x-request-id': request.id,
      })
      const write = writer(raw)
      // id: where an EventSource resumes, should it reconnect before the first verdict; retry: how soon it
      // reconnects. It keeps both across reconnections
      raw.write(`: verdicts after position ${after}\n\nretry: ${STREAM_RECONNECT_MS}\nid: ${after}\n\n`)
      const log = request.log.child({ stream: 'verdicts', after })
      log.info('verdict stream opened')

      let subscription: Subscription | null = null
      let ending: Promise<void> | null = null
      const heartbeat = setInterval(() => {
        if (!raw.destroyed && raw.writableLength === 0) raw.write(': heartbeat\n\n')
      }, HEARTBEAT_MS)
      heartbeat.unref()
      const stream = {
        end: () => {
          ending ??= (async () => {
            clearInterval(heartbeat)
            open.delete(stream)
            release()
            // a client that stopped reading would hold the subscription at a full buffer forever
            if (raw.writableNeedDrain) raw.destroy()
            await subscription?.close()
            if (!raw.writableEnded && !raw.destroyed) raw.end()
            log.info('verdict stream closed')
          })()
          return ending
        },
      }
      open.add(stream)
      raw.on('close', () => void stream.end())
      // a client that left while the head was read is gone already: its close event came before the listener
      if (raw.destroyed) void stream.end()

      try {
        const pages = pagedWriter(write, config.STREAM_PAGE_BYTES)
        subscription = store.subscribe(after, async (batch) => {
          for (const e of batch) {
            if (!VERDICT_EVENT_TYPES.has(e.type)) continue
            if (visible !== null && !(await visible(e))) continue
            await pages.add(formatVerdictEvent(e))
          }
          await pages.flush()
        })
      } catch (error) {
        log.warn({ err: error }, 'the ledger is closed: ending the verdict stream')
        await stream.end()
        return
      }
      subscription.done.then(
        () => void stream.end(),
        (error: unknown) => {
          if (!(error instanceof StreamClosed)) log.error({ err: error }, 'the verdict stream failed')
          void stream.end()
        },
      )
    },
  )
}
