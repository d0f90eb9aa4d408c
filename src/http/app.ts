import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, { type FastifyInstance } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import { jsonText } from '../domain/canonical.js'
import { parseJsonStrictly } from '../domain/strict-json.js'
import type { Runtime } from '../runtime.js'
import { authPlugin } from './auth.js'
import { commandsPlugin } from './commands.js'
import { CONSOLE_DIR, consoleRoutes } from './console.js'
import { corsPlugin } from './cors.js'
import { errorHandler, frameworkError } from './errors.js'
import { openApiOptions } from './openapi.js'
import { overloadOf, overloadPlugin } from './overload.js'
import { rateLimitsOf, rateLimitsPlugin } from './rate-limits.js'
import { readModelsPlugin } from './read-models.js'
import { apiRoutes, metricsRoute, publicRoutes } from './routes/index.js'
import { MAX_PATH_PARAMETER_LENGTH } from './schemas.js'

export type App = FastifyInstance

/** Log fields that never reach a log line: tokens, keys, secrets. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.token',
  '*.secret',
  '*.privateKey',
  '*.password',
]

declare module 'fastify' {
  interface FastifyInstance {
    runtime: Runtime
  }
}

/**
 * The HTTP API: public system routes, the authenticated /v1 API, Prometheus /metrics, the OpenAPI docs, and the
 * console's static files.
 */
export const buildApp = async (
  runtime: Runtime,
  options: { logger?: boolean; consoleDir?: string } = {},
): Promise<App> => {
  const { config } = runtime
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : { level: config.LOG_LEVEL, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
    bodyLimit: config.BODY_LIMIT_BYTES,
    // a resource name is one path segment of up to 500 characters (the router's default stops at 100)
    routerOptions: { maxParamLength: MAX_PATH_PARAMETER_LENGTH },
    // what the router refuses is answered in the API's one error shape too
    frameworkErrors: (error, request, reply) =>
      errorHandler(frameworkError(error, MAX_PATH_PARAMETER_LENGTH), request, reply),
    // a request still arriving after REQUEST_TIMEOUT_SECONDS is cut off (408): a slow sender holds no buffers
    // for long; connections are checked every second, not every 30 s
    serverFactory: (handler) =>
      createServer(
        { requestTimeout: config.REQUEST_TIMEOUT_SECONDS * 1000, connectionsCheckingInterval: 1000 },
        handler,
      ),
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID()
    },
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: true,
  }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler((route) => {
    const serialize = serializerCompiler(route as Parameters<typeof serializerCompiler>[0])
    // a value an older ledger let in deeper than the native writer goes (checked already): the iterative one
    return (data) => {
      try {
        return serialize(data)
      } catch (error) {
        if (error instanceof RangeError) return jsonText(data)
        throw error
      }
    }
  })
  app.setErrorHandler(errorHandler)
  // one meaning per body: no duplicate keys, no lone surrogates, exact numbers, bounded depth (400 otherwise)
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonStrictly(body as string))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: 'not-found', message: `no route ${request.method} ${request.url}`, details: null })
  })
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id)
  })
  app.decorate('runtime', runtime)
  // before every route scope: a preflight is answered ahead of authentication and rate limits
  if (config.CORS_ALLOWED_ORIGINS) await app.register(corsPlugin, { origins: config.CORS_ALLOWED_ORIGINS })

  await app.register(swagger, openApiOptions(config))
  await app.register(swaggerUi, { routePrefix: '/docs' })

  await app.register(publicRoutes)
  await app.register(consoleRoutes(options.consoleDir ?? CONSOLE_DIR))
  await app.register(
    async (api) => {
      await api.register(authPlugin, { verifier: runtime.verifier })
      // after authentication: every budget is the verified principal's
      await api.register(rateLimitsPlugin, rateLimitsOf(config))
      // commands are refused at once while the ledger is backed up, rather than queued behind it
      const { commandsShed } = app.prometheus
      await api.register(overloadPlugin, { ...overloadOf(config), shed: () => commandsShed.inc() })
      await api.register(commandsPlugin, { store: runtime.store })
      await api.register(readModelsPlugin, { kept: config.READ_MODELS })
      api.addHook('preHandler', async (request) => {
        if (request.principal) request.log = request.log.child({ principal: request.principal.sub })
      })
      await api.register(apiRoutes)
    },
    { prefix: '/v1' },
  )
  await app.register(async (scope) => {
    if (!config.METRICS_PUBLIC) await scope.register(authPlugin, { verifier: runtime.verifier })
    await scope.register(metricsRoute)
  })
  return app
}
