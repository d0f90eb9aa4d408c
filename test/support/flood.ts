// A flood in a process of its own, so that it does not slow the client whose latency a drill measures:
// autocannon's connections each POST a JSON body as soon as the last answer came, every `{n}` in the body
// replaced by the request's number (a new resource, a new version). Prints autocannon's result as JSON.
//   node --import tsx test/support/flood.ts '{"url":...,"token":...,"body":...,"connections":20,"seconds":5}'
import autocannon from 'autocannon'

interface FloodOptions {
  readonly url: string
  readonly token: string
  readonly body: string
  readonly connections: number
  readonly seconds: number
}

const options = JSON.parse(process.argv[2] ?? '{}') as FloodOptions
let n = 0
autocannon(
  {
    url: options.url,
    method: 'POST',
    connections: options.connections,
    duration: options.seconds,
    headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request) => {
          n += 1
          return { ...request, body: options.body.replaceAll('{n}', String(n)) }
        },
      },
    ],
  },
  (error, result) => {
    if (error) {
      process.stderr.write(`flood failed: ${error.message}\n`)
      process.exit(1)
    }
    process.stdout.write(JSON.stringify(result))
  },
)
