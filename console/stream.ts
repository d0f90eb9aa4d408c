// The verdict stream (Server-Sent Events) read with fetch, which, unlike EventSource, sends the Authorization
// header; it resumes after the last event seen (Last-Event-ID) when the connection drops.
import { authorization } from './api.js'

export interface VerdictEvent {
  readonly position: number
  readonly eventId: string
  readonly recordedAt: string
  readonly type: string
  readonly data: { proposalId?: string; decision?: string; revision?: number; agentId?: string }
}

export type StreamState = 'connecting' | 'live' | 'retrying' | 'closed'

export const followVerdicts = (
  after: number,
  onEvent: (event: VerdictEvent) => void,
  onState: (state: StreamState, detail?: string) => void,
): (() => void) => {
  const abort = new AbortController()
  let last = after
  const run = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      onState('connecting')
      try {
        const response = await fetch(`/v1/verdicts/stream?after=${last}`, {
          headers: { accept: 'text/event-stream', 'last-event-id': String(last), ...authorization() },
          signal: abort.signal,
        })
        if (!response.ok || !response.body) throw new Error(`the stream answered ${response.status}`)
        onState('live')
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer += value
          let end = buffer.indexOf('\n\n')
          while (end >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            end = buffer.indexOf('\n\n')
            const data = block
              .split('\n')
              .filter((line) => line.startsWith('data:'))
              .map((line) => line.slice(5).trimStart())
              .join('\n')
            if (!data) continue
            const event = JSON.parse(data) as VerdictEvent
            last = Math.max(last, event.position)
            onEvent(event)
          }
        }
        onState('retrying', 'the stream ended')
      } catch (error) {
        if (abort.signal.aborted) break
        onState('retrying', error instanceof Error ? error.message : String(error))
      }
      await new Promise((resume) => setTimeout(resume, 1000))
    }
    onState('closed')
  }
  void run()
  return () => abort.abort()
}
