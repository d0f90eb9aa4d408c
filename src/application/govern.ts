import type { Actor } from '../domain/actor.js'
import { type Approval, adminGoverns, type GovernanceCommand, widens } from '../domain/deciders/governance.js'
import type { Decider } from '../domain/deciders/index.js'
import { binding, governance, grant, inventory, killSwitch, policy } from '../domain/deciders/index.js'
import { DomainError } from '../domain/errors.js'
import {
  type DataOf,
  type DomainEvent,
  type GovernanceChange,
  PolicyDraft,
  streams,
} from '../domain/events.js'
import { uuidv7 } from '../domain/ids.js'
import { demand } from '../domain/specification.js'
import {
  type AppendResult,
  type EventStore,
  type StreamWrite,
  WrongExpectedVersionError,
} from '../store/port.js'
import { wideningContext } from './context.js'
import { type CommandMetadata, foldState, modelled } from './handle.js'

type Options = Omit<CommandMetadata, 'actor'>

/** What a governance command came to: applied at once, or waiting for a second policy admin. */
export type Governed =
  | { readonly status: 'applied'; readonly result: AppendResult }
  | {
      readonly status: 'pending'
      readonly requestId: string
      readonly widens: string
      readonly result: AppendResult
    }

/** The events a change would append to its own stream, decided on that stream's current state. */
interface Effect {
  readonly write: StreamWrite
}

/** Stands for the admin who will approve, when a change is tried before it is requested; never recorded. */
const SOME_SECOND_ADMIN = 'second-policy-admin-to-come'

/** How often a command is decided again when another writer appended to one of its streams meanwhile. */
const CONFLICT_RETRIES = 5

const decideOn = async <C, S, E extends DomainEvent>(
  store: EventStore,
  decider: Decider<C, S, E>,
  stream: string,
  command: C,
  metadata: CommandMetadata,
): Promise<Effect> => {
  const stored = await store.readStream(stream)
  const events = decider.decide(command, foldState(decider, stored))
  const { idempotencyKey: _key, ...meta } = metadata
  return {
    write: {
      stream,
      events: modelled(events).map((e) => ({ type: e.type, data: e.data, metadata: meta })),
      expectedVersion: stored.length,
    },
  }
}

/** The change, decided on the stream it changes, as `actor` with `approval` behind it. */
const effectOf = (
  store: EventStore,
  actor: Actor,
  change: GovernanceChange,
  draft: PolicyDraft | null,
  approval: Approval,
  metadata: CommandMetadata,
): Promise<Effect> => {
  switch (change.kind) {
    case 'publish-policy': {
      if (draft === null) throw new DomainError('invalid', 'a policy change carries the policy')
      const command = { type: 'PublishPolicy' as const, actor, policy: draft, approval }
      return decideOn(store, policy, streams.policy(), command, metadata)
    }
    case 'publish-shadow-policy': {
      if (draft === null) throw new DomainError('invalid', 'a policy change carries the policy')
      const command = { type: 'PublishShadowPolicy' as const, actor, policy: draft, approval }
      return decideOn(store, policy, streams.policy(), command, metadata)
    }
    case 'release-kill-switch': {
      const { scope, target, reason } = change
      const command = { type: 'Release' as const, actor, reason, approval }
      return decideOn(store, killSwitch, streams.killSwitch({ scope, target }), command, metadata)
    }
    case 'register-tool-action': {
      const { kind: _kind, ...entry } = change
      const command = { type: 'RegisterToolAction' as const, actor, ...entry, approval }
      return decideOn(store, inventory, streams.tool(change.tool, change.action), command, metadata)
    }
    case 'grant-scope': {
      const { kind: _kind, ...scope } = change
      return decideOn(
        store,
        grant,
        streams.grant(change.grantId),
        { type: 'GrantScope', actor, ...scope },
        metadata,
      )
    }
    case 'bind-identity': {
      const { principal, role, identity } = change
      const command = { type: 'Bind' as const, actor, principal, role, identity, approval }
      return decideOn(store, binding, streams.identity(identity), command, metadata)
    }
  }
}

const appendAll = async (
  store: EventStore,
  effects: readonly Effect[],
  idempotencyKey: string | undefined,
): Promise<AppendResult> => {
  const writes = effects.map((e) => e.write).filter((w) => w.events.length > 0)
  if (writes.length === 0) return { events: [], duplicate: false }
  return store.appendMany(writes, idempotencyKey === undefined ? {} : { idempotencyKey })
}

/** Decides and appends, again on fresh state when a concurrent writer moved one of the streams. */
const retrying = async (
  store: EventStore,
  idempotencyKey: string | undefined,
  attempt: () => Promise<AppendResult>,
): Promise<AppendResult> => {
  for (let tries = 0; ; tries += 1) {
    const recalled = idempotencyKey === undefined ? null : await store.recall(idempotencyKey)
    if (recalled) return recalled
    try {
      return await attempt()
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError) || tries >= CONFLICT_RETRIES) throw error
    }
  }
}

/**
 * A governance change by one policy admin: applied at once when it does not widen authority; otherwise
 * checked against the stream it would change (so a change that could never apply is refused now) and
 * recorded as a request, pinned to that stream's version, that a second, distinct policy admin approves or
 * refuses. Whether it widens is judged again on every attempt, against the state it is appended on.
 */
export const govern = async (
  store: EventStore,
  actor: Actor,
  change: GovernanceChange,
  draft: PolicyDraft | null,
  options: Options = {},
): Promise<Governed> => {
  demand(adminGoverns, actor)
  const metadata: CommandMetadata = { ...options, actor: actor.sub }
  const toolAction = change.kind === 'register-tool-action' || change.kind === 'grant-scope' ? change : null
  const requestId = uuidv7()
  const result = await retrying(store, options.idempotencyKey, async () => {
    const why = widens(change, await wideningContext(store, toolAction))
    if (why === null) {
      const alone = { requestedBy: actor.sub, approvedBy: null }
      return appendAll(
        store,
        [await effectOf(store, actor, change, draft, alone, metadata)],
        options.idempotencyKey,
      )
    }
    // would it apply if approved now? An impossible change is refused before anyone is asked to approve it,
    // and a change that would change nothing (a retry of one already made) asks no one
    const approval = { requestedBy: actor.sub, approvedBy: SOME_SECOND_ADMIN }
    const effect = await effectOf(store, actor, change, draft, approval, metadata)
    if (effect.write.events.length === 0) return { events: [], duplicate: false }
    const command: GovernanceCommand = {
      type: 'RequestChange',
      actor,
      requestId,
      change,
      policy: draft === null ? null : { ...draft },
      widens: why,
      basedOn: { stream: effect.write.stream, version: Number(effect.write.expectedVersion) },
    }
    return appendAll(
      store,
      [await decideOn(store, governance, streams.change(requestId), command, metadata)],
      options.idempotencyKey,
    )
  })
  const requested = result.events[0]
  if (requested?.type !== 'ChangeRequested') return { status: 'applied', result }
  const data = requested.data as DataOf<'ChangeRequested'>
  return { status: 'pending', requestId: data.requestId, widens: data.widens, result }
}

/**
 * A second, distinct policy admin approves a pending change: the approval and the change itself are
 * appended in one transaction, so the ledger never holds one without the other.
 */
export const approveChange = (
  store: EventStore,
  actor: Actor,
  requestId: string,
  options: Options = {},
): Promise<AppendResult> => {
  const metadata: CommandMetadata = { ...options, actor: actor.sub }
  return retrying(store, options.idempotencyKey, async () => {
    const changeStream = streams.change(requestId)
    const state = foldState(governance, await store.readStream(changeStream))
    const approved = await decideOn(
      store,
      governance,
      changeStream,
      { type: 'ApproveChange', actor },
      metadata,
    )
    if (state.status === 'none') throw new DomainError('not-found', `change request ${requestId}`)
    const draft = state.policy === null ? null : PolicyDraft.parse(state.policy)
    const approval = { requestedBy: state.requestedBy, approvedBy: actor.sub }
    const effect = await effectOf(store, actor, state.change, draft, approval, metadata)
    // approved as requested, or not at all: a change whose stream moved since is stale, and asked for again
    const { stream, version } = state.basedOn
    if (effect.write.stream !== stream || effect.write.expectedVersion !== version) {
      const now = effect.write.expectedVersion
      throw new DomainError(
        'conflict',
        `${stream} changed since this change was requested (version ${version}, now ${String(now)}): refuse it and request it again`,
        { stream, requestedAt: version, now },
      )
    }
    return appendAll(store, [approved, effect], options.idempotencyKey)
  })
}

/** Any policy admin refuses a pending change (its requester too, to withdraw it). */
export const refuseChange = (
  store: EventStore,
  actor: Actor,
  requestId: string,
  reason: string,
  options: Options = {},
): Promise<AppendResult> => {
  const metadata: CommandMetadata = { ...options, actor: actor.sub }
  return retrying(store, options.idempotencyKey, async () => {
    const command = { type: 'RefuseChange' as const, actor, reason }
    return appendAll(
      store,
      [await decideOn(store, governance, streams.change(requestId), command, metadata)],
      options.idempotencyKey,
    )
  })
}

/** A change request as its stream tells it; null when there is none. */
export const changeRequest = async (store: EventStore, requestId: string) => {
  const stored = await store.readStream(streams.change(requestId))
  const state = foldState(governance, stored)
  if (state.status === 'none') return null
  const approved = stored.find((e) => e.type === 'ChangeApproved')
  const refused = stored.find((e) => e.type === 'ChangeRefused')
  return {
    ...state,
    requestedAt: stored[0]?.recordedAt ?? null,
    approvedBy: (approved?.data as { approvedBy?: string } | undefined)?.approvedBy ?? null,
    refused: refused ? (refused.data as { refusedBy: string; reason: string }) : null,
  }
}
