import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { killSwitch } from '../../domain/deciders/index.js'
import {
  Environment,
  KillSwitchEngaged,
  KillSwitchRef,
  KillSwitchScope,
  parseDomainEvent,
  streams,
  ToolName,
} from '../../domain/events.js'
import { authorize } from '../auth.js'
import { actorOf, GovernedResult, governed } from '../commands.js'
import { CommandResult, errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

/** The global switch has no target and every other one names what it stops: checked here so a 400 names the field. */
const SwitchBody = KillSwitchEngaged.shape.data
  .extend({
    target: KillSwitchRef.shape.target.default(null).describe('null (or absent) for the global switch'),
  })
  .superRefine((body, ctx) => {
    if (body.scope === 'global' && body.target !== null)
      ctx.addIssue({ code: 'custom', path: ['target'], message: 'the global kill switch has no target' })
    if (body.scope !== 'global' && body.target === null)
      ctx.addIssue({
        code: 'custom',
        path: ['target'],
        message: `a ${body.scope} kill switch needs a target`,
      })
    // a tool switch names a registered tool exactly (no '.'), so it stops every action of that tool and no other
    if (body.scope === 'tool' && body.target !== null && !ToolName.safeParse(body.target).success)
      ctx.addIssue({
        code: 'custom',
        path: ['target'],
        message: "a tool name: letters, digits, '_' and '-' only",
      })
    if (body.scope === 'environment' && body.target !== null && !Environment.safeParse(body.target).success)
      ctx.addIssue({ code: 'custom', path: ['target'], message: 'an environment name' })
  })

const EngagedSwitch = z.object({
  scope: KillSwitchScope,
  target: z.string().nullable(),
  reason: z.string(),
  engagedAt: z.string(),
  engagedBy: z.string(),
  eventId: z.string(),
})

export const killSwitchRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, decision } = app.runtime

  app.post(
    '/kill-switches',
    {
      preValidation: authorize('policy-admin'),
      config: { emergencyBrake: true },
      schema: {
        tags: ['kill switches'],
        operationId: 'engageKillSwitch',
        summary:
          'Engage a kill switch: every verdict in its scope is block, and unexecuted allows are revoked',
        headers: IdempotencyHeaders,
        body: SwitchBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { scope, target, reason } = request.body
      const result = await app.commands.run(request, killSwitch, streams.killSwitch({ scope, target }), {
        type: 'Engage',
        actor: actorOf(request),
        scope,
        target,
        reason,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/kill-switches/release',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['kill switches'],
        operationId: 'releaseKillSwitch',
        summary:
          'Request the release of an engaged kill switch, with the reason (a second policy admin approves it)',
        headers: IdempotencyHeaders,
        body: SwitchBody,
        response: { 201: GovernedResult, 202: GovernedResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { scope, target, reason } = request.body
      const answer = await governed(request, { kind: 'release-kill-switch', scope, target, reason })
      return reply.code(answer.status === 'pending' ? 202 : 201).send(answer)
    },
  )

  app.get(
    '/kill-switches',
    {
      schema: {
        tags: ['kill switches'],
        operationId: 'listKillSwitches',
        summary: 'The engaged kill switches, as the decision service sees them',
        response: {
          200: z.object({
            killSwitches: z.array(EngagedSwitch),
            /** the ledger position the decision service's world reflects */
            asOf: z.number().int(),
          }),
          ...readErrors(401, 429),
        },
      },
    },
    async () => {
      const asOf = decision.position
      const killSwitches: z.infer<typeof EngagedSwitch>[] = []
      for (const ref of decision.world().killSwitches()) {
        // the switch's own stream tells why, when and by whom it was engaged
        const engaged = (await store.readStream(streams.killSwitch(ref)))
          .filter((e) => e.type === 'KillSwitchEngaged')
          .at(-1)
        const event = engaged ? parseDomainEvent(engaged) : null
        if (!engaged || event?.type !== 'KillSwitchEngaged') continue
        killSwitches.push({
          scope: ref.scope,
          target: ref.target,
          reason: event.data.reason,
          engagedAt: engaged.recordedAt,
          engagedBy: engaged.metadata.actor,
          eventId: engaged.id,
        })
      }
      return { killSwitches, asOf }
    },
  )
}
