// The baseline of the HTTP figures: a bare Fastify server whose one POST route parses the JSON body and returns it.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.post('/echo', async (request) => request.body)
app.get('/ready', async () => ({ ready: true }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0))
})
