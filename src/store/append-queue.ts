import { draftWrites, type PendingAppend } from './append-plan.js'
import type { AppendOptions, AppendResult, StreamWrite } from './port.js'

/** Splits the queue into the calls of the next commit (at least one, in order) and the rest. */
export type TakeBatch = (queue: readonly PendingAppend[]) => {
  readonly batch: PendingAppend[]
  readonly rest: PendingAppend[]
}

const takeAll: TakeBatch = (queue) => ({ batch: [...queue], rest: [] })

export interface AppendQueueOptions {
  /** commits one batch and settles each of its calls, whatever happens: it never throws */
  readonly flush: (calls: readonly PendingAppend[]) => void | Promise<void>
  /** how many queued calls one commit carries: all of them unless the adapter has a limit */
  readonly take?: TakeBatch
}

/** Group commit: queues append calls and commits them in batches, one batch at a time. */
export class AppendQueue {
  private queue: PendingAppend[] = []
  private flushing: Promise<void> | null = null

  constructor(private readonly options: AppendQueueOptions) {}

  /** Queues one call, checked first so a bad call fails alone; settles once its batch has committed. */
  enqueue(writes: readonly StreamWrite[], options: AppendOptions = {}): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      const key = options.idempotencyKey ?? null
      this.queue.push({ writes: draftWrites(writes, key), key, resolve, reject })
      this.flushing ??= this.drain().finally(() => {
        this.flushing = null
      })
    })
  }

  /** Resolves once every queued call has settled. */
  async drained(): Promise<void> {
    await this.flushing
  }

  /** The calls that arrive while one batch commits go together into the next. */
  private async drain(): Promise<void> {
    const take = this.options.take ?? takeAll
    for (;;) {
      // let the calls made in the same turn of the event loop join this batch
      await new Promise((resolve) => setImmediate(resolve))
      const { batch, rest } = take(this.queue)
      this.queue = rest
      if (batch.length === 0) return
      await this.options.flush(batch)
    }
  }
}
