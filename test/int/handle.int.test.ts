import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { handle } from '../../src/application/handle.js'
import type { Actor } from '../../src/domain/actor.js'
import { resource } from '../../src/domain/deciders/index.js'
import type { ResourceCommand } from '../../src/domain/deciders/resource.js'
import { streams } from '../../src/domain/events.js'
import type { EventStore } from '../../src/store/port.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { lastOf, streamPages } from '../../src/store/stream-pages.js'

const OBSERVER: Actor = { sub: 'observer-1', roles: ['observer'], approvalRoles: [] }

const observe = (version: string, observedAt: string, actor = OBSERVER): ResourceCommand => ({
  type: 'ObserveState',
  actor,
  context: { now: '2026-01-01T00:01:00.000Z', maxSkewSeconds: 5 },
  environment: 'production',
  resource: 'deployment/web',
  version,
  digest: `d-${version}`,
  observedAt,
})

test('a command that loses a race to another writer is decided again on the new state, not refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'handle-'))
  const store = openSqliteEventStore({ path: join(dir, 'ledger.db') })
  try {
    const stream = streams.resource('production', 'deployment/web')
    let raced = 0
    // another writer slips an observation in between this command's read and its append, twice
    const racing: EventStore = Object.create(store, {
      append: {
        value: async (...args: Parameters<EventStore['append']>) => {
          if (raced < 2) {
            raced += 1
            await handle(
              store,
              resource,
              stream,
              observe(`other-${raced}`, `2026-01-01T00:00:0${raced}.000Z`, {
                ...OBSERVER,
                sub: 'observer-2',
              }),
              { actor: 'observer-2' },
            )
          }
          return store.append(...args)
        },
      },
    })
    const result = await handle(racing, resource, stream, observe('mine', '2026-01-01T00:00:05.000Z'), {
      actor: 'observer-1',
    })
    assert.equal(raced, 2)
    assert.equal(result.events[0]?.streamVersion, 3, 'appended after both racing writes')
    assert.deepEqual(
      (await store.readStream(stream)).map((e) => (e.data as { version: string }).version),
      ['other-1', 'other-2', 'mine'],
    )
    // a command the new state refuses is refused, not forced in: an observation older than the latest
    await assert.rejects(
      handle(store, resource, stream, observe('late', '2026-01-01T00:00:00.000Z'), { actor: 'observer-1' }),
      /stale/,
    )
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a stream longer than a page is loaded page by page to its last version', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'handle-'))
  const store = openSqliteEventStore({ path: join(dir, 'ledger.db') })
  try {
    const stream = streams.resource('production', 'deployment/web')
    const observed = (n: number) => ({
      type: 'StateObserved',
      data: {
        environment: 'production',
        resource: 'deployment/web',
        version: `v${n}`,
        digest: `d-v${n}`,
        observedAt: '2026-01-01T00:00:00.000Z',
      },
      metadata: { actor: 'observer-1' },
    })
    const count = 2500
    for (let from = 1; from <= count; from += 500)
      await store.append(
        stream,
        Array.from({ length: 500 }, (_, i) => observed(from + i)),
        'any',
      )
    let pages = 0
    for await (const _ of streamPages(store, stream)) pages += 1
    assert.ok(pages > 1, `read in ${pages} pages`)
    assert.equal((await lastOf(store, stream))?.streamVersion, count)
    const result = await handle(store, resource, stream, observe('next', '2026-01-01T00:00:05.000Z'), {
      actor: 'observer-1',
    })
    assert.equal(result.events[0]?.streamVersion, count + 1, 'appended at the version after the last page')
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
