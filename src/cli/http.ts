import { CliError } from './errors.js'

/** How long one request to the service may take. */
const REQUEST_TIMEOUT_MS = 10_000
/** The longest answer a command reads from the service. */
const MAX_ANSWER_BYTES = 64 * 1024

/** Reads an answer's body up to MAX_ANSWER_BYTES: a service that sends more is refused before it is all read. */
const boundedText = async (response: Response, url: string): Promise<string> => {
  const declared = Number(response.headers.get('content-length') ?? 0)
  if (declared > MAX_ANSWER_BYTES) throw new CliError(`${url} answered more than ${MAX_ANSWER_BYTES} bytes`)
  const chunks: Uint8Array[] = []
  let length = 0
  const reader = response.body?.getReader()
  for (;;) {
    const read = reader ? await reader.read() : { done: true as const, value: undefined }
    if (read.done) break
    length += read.value.byteLength
    if (length > MAX_ANSWER_BYTES) {
      await reader?.cancel()
      throw new CliError(`${url} answered more than ${MAX_ANSWER_BYTES} bytes`)
    }
    chunks.push(read.value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** GETs a URL of the service, with a bearer token when given; any answer but 2xx is an error naming it. */
export const request = async (url: string, token: string | undefined): Promise<string> => {
  const response = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const text = await boundedText(response, url)
  if (!response.ok) throw new CliError(`${url} answered ${response.status}: ${text.slice(0, 200)}`)
  return text
}
