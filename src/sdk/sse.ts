/** One dispatched Server-Sent Event. */
export interface SseMessage {
  readonly event: string
  readonly data: string
  /** the last event id seen on the stream so far (it persists across events, as in EventSource) */
  readonly id: string
}

/**
 * An incremental text/event-stream parser (the WHATWG rules): lines end in CRLF, LF or CR, a blank line
 * dispatches, `:` starts a comment, data lines join with LF, an event with no data is not dispatched.
 */
export class SseParser {
  private buffer = ''
  private data: string[] = []
  private event = ''
  private lastId = ''
  /** the reconnection delay the server asked for with a `retry:` field, if any */
  retryMs: number | undefined
  /** a chunk ended in CR: an LF at the start of the next one belongs to the same line ending */
  private pendingCr = false

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): SseMessage[] {
    let chunk = text
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1)
    this.pendingCr = false
    this.buffer += chunk
    const out: SseMessage[] = []
    for (;;) {
      const end = this.buffer.search(/[\r\n]/)
      if (end < 0) break
      const line = this.buffer.slice(0, end)
      const crlf = this.buffer[end] === '\r' && this.buffer[end + 1] === '\n'
      if (this.buffer[end] === '\r' && end + 1 === this.buffer.length) this.pendingCr = true
      this.buffer = this.buffer.slice(end + (crlf ? 2 : 1))
      const message = this.line(line)
      if (message) out.push(message)
    }
    return out
  }

  private line(line: string): SseMessage | null {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return null
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.event = value
        break
      case 'data':
        this.data.push(value)
        break
      case 'id':
        if (!value.includes('\0')) this.lastId = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value)
        break
    }
    return null
  }

  private dispatch(): SseMessage | null {
    const { data, event } = this
    this.data = []
    this.event = ''
    if (data.length === 0) return null
    return { event: event || 'message', data: data.join('\n'), id: this.lastId }
  }
}
