import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { projections } from '../../projections/index.js'
import { ProjectionRunner } from '../../projections/runner.js'
import { everyEvent, recordedDecisions, replayDecisions } from '../../src/decision/replay.js'
import { DECISION_NAMESPACE, DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, generateSigningKey, verifyVerdictSignature } from '../../src/decision/signer.js'
import { actionDigestOf, canonicalize } from '../../src/domain/canonical.js'
import type { DataOf, DomainEvent } from '../../src/domain/events.js'
import type { StoredEvent } from '../../src/store/port.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { verifyLedger } from '../../src/store/verify.js'
import { FakeClock, History } from '../support/history.js'

const EVENTS = 10_000

/**
 * What a real service could have written, event by event: every fact stated by a principal entitled to it
 * ("earned, not claimed"). Answers the first breach found, or null.
 */
const lawBreaches = () => {
  const agentsOf = new Map<string, Set<string>>()
  const proposals = new Map<
    string,
    { agentId: string; identity: string; digest: string; requests: Set<string> }
  >()
  let policies = 0
  const breaches: string[] = []
  const check = (ok: boolean, what: string, e: StoredEvent) => {
    if (!ok) breaches.push(`${what} at position ${e.position} (${e.type})`)
  }
  const fromAgentSide = (by: string, p: { agentId: string; identity: string }) =>
    by === p.agentId || by === p.identity
  return {
    breaches,
    see(e: StoredEvent) {
      const event = { type: e.type, data: e.data } as DomainEvent
      const p = proposals.get((e.data as { proposalId?: string }).proposalId ?? '')
      switch (event.type) {
        case 'IdentityBound':
        case 'IdentityUnbound': {
          if (event.type === 'IdentityBound')
            check(event.data.requestedBy !== event.data.approvedBy, 'a binding by one admin', e)
          if (event.data.role !== 'agent') return
          const bound = agentsOf.get(event.data.identity) ?? new Set()
          if (event.type === 'IdentityBound') bound.add(event.data.principal)
          else bound.delete(event.data.principal)
          agentsOf.set(event.data.identity, bound)
          return
        }
        case 'ProposalSubmitted': {
          const { proposalId, agentId, executingIdentity, actionDigest } = event.data
          check(e.metadata.actor === agentId, 'a proposal by another principal than its agent', e)
          check(
            agentsOf.get(executingIdentity)?.has(agentId) === true,
            'a proposal through an unbound identity',
            e,
          )
          check(actionDigest === actionDigestOf(event.data), 'an action digest the ledger did not compute', e)
          proposals.set(proposalId, {
            agentId,
            identity: executingIdentity,
            digest: actionDigest,
            requests: new Set(),
          })
          return
        }
        case 'SimulationRequested':
          check(e.metadata.actor === p?.agentId, 'a simulation requested by another than the proposer', e)
          p?.requests.add(event.data.requestId)
          return
        case 'SimulationRecorded':
          check(
            p !== undefined && !fromAgentSide(event.data.simulatedBy, p),
            'a simulation from the agent side',
            e,
          )
          check(p?.requests.has(event.data.requestId) === true, 'a simulation nobody requested', e)
          check(e.metadata.actor === event.data.simulatedBy, 'a simulation recorded for another', e)
          check(event.data.actionDigest === p?.digest, 'a simulation of another action', e)
          return
        case 'RollbackTested':
          check(
            p !== undefined && !fromAgentSide(event.data.testedBy, p),
            'a rollback test from the agent side',
            e,
          )
          check(event.data.actionDigest === p?.digest, 'a rollback test of another action', e)
          return
        case 'ApprovalGranted':
          check(
            p !== undefined && !fromAgentSide(event.data.approver, p),
            'an approval from the agent side',
            e,
          )
          check(event.data.actionDigest === p?.digest, 'an approval of another action', e)
          return
        case 'PolicyPublished':
          policies += 1
          check(
            policies === 1
              ? event.data.approvedBy === null && e.position === 1
              : event.data.approvedBy !== null && event.data.approvedBy !== event.data.publishedBy,
            'a policy without its second admin',
            e,
          )
          return
        case 'AgentPromoted':
          check(
            new Set(event.data.endorsedBy).size >= 2 && !event.data.endorsedBy.includes(event.data.agentId),
            'a promotion without two distinct admins',
            e,
          )
          return
        default:
          return
      }
    },
  }
}

test(`replay: a generated history of ${EVENTS}+ events, rebuilt from zero, gives identical verdicts and projections`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-replay-'))
  const clock = new FakeClock()
  const store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
  const derivedPath = join(dir, 'derived.db')
  const docs = openSqliteDocStore(derivedPath)
  const signer = createVerdictSigner(generateSigningKey())
  try {
    const decision = await DecisionService.answering(store, docs, signer)
    // projections follow the ledger live, in whatever batches it grows by
    const live = projections.map((p) => new ProjectionRunner(store, docs, p))
    const following = live.map((r) => r.follow())
    await new History(store, decision, clock, 20261125).generate(EVENTS)
    await decision.catchUp()
    await Promise.all(following.map((s) => s.close()))
    for (const runner of live) await runner.catchUp()

    const head = await store.head()
    const names = [DECISION_NAMESPACE, ...projections.map((p) => p.name)]
    const liveDumps = new Map(names.map((n) => [n, docs.dump(n)]))
    const recorded = await recordedDecisions(store)

    // every path of the rules is in the history
    const counts = new Map<string, number>()
    for (const d of recorded) {
      const key =
        d.type === 'VerdictIssued' ? `${d.type}:${(d.data as DataOf<'VerdictIssued'>).decision}` : d.type
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    const typeCounts = new Map<string, number>()
    const law = lawBreaches()
    for await (const e of everyEvent(store)) {
      typeCounts.set(e.type, (typeCounts.get(e.type) ?? 0) + 1)
      law.see(e)
    }
    assert.deepEqual(law.breaches, [], 'every fact is stated by a principal entitled to it')
    for (const path of [
      'VerdictIssued:allow',
      'VerdictIssued:block',
      'VerdictRevoked',
      'ViolationRecorded',
      'AgentDemoted',
    ]) {
      assert.ok((counts.get(path) ?? 0) > 0, `the history has no ${path}`)
    }
    for (const type of [
      'PromotionRefused',
      'AgentPromoted',
      'ExecutionFailed',
      'RollbackCompleted',
      'RollbackFailed',
      'KillSwitchEngaged',
      'VerdictExpired',
      'RecoveryDeadlinePassed',
      'ProposalWithdrawn',
      'ProposalExpired',
      'ExecutionSucceeded',
      'ExecutionRefused',
      'SimulationRequested',
      'PromotionApproved',
      'IdentityUnbound',
      'ChangeApproved',
      'ChangeRefused',
    ]) {
      assert.ok((typeCounts.get(type) ?? 0) > 0, `the history has no ${type}`)
    }

    // wipe every derived state, then rebuild from the ledger alone
    docs.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${derivedPath}${suffix}`, { force: true })
    const rebuilt = openSqliteDocStore(derivedPath)
    try {
      const replayed = await replayDecisions(store, signer, rebuilt)
      assert.equal(replayed.length, recorded.length, 'as many answers on replay as were recorded')
      for (let i = 0; i < recorded.length; i += 1) {
        assert.equal(canonicalize(replayed[i]), canonicalize(recorded[i]), `answer ${i} differs on replay`)
      }
      for (const p of projections) await new ProjectionRunner(store, rebuilt, p).rebuild()
      // the world decided again from zero is the world the ledger folds to (the layout marks aside)
      const documents = (dump: readonly (readonly [string, string])[] = []) =>
        dump.filter(([key]) => key !== '__meta')
      for (const name of names) {
        const again = documents(rebuilt.dump(name))
        assert.equal(again.length, documents(liveDumps.get(name)).length, `${name}: document count`)
        assert.deepEqual(again, documents(liveDumps.get(name)), `${name} differs after a rebuild from zero`)
      }
    } finally {
      rebuilt.close()
    }

    // the signatures verify offline, and the chain holds
    const jwks = await signer.jwks()
    const firstAllow = recorded.find((d) => d.type === 'VerdictIssued')
    await verifyVerdictSignature(firstAllow?.data as DataOf<'VerdictIssued'>, jwks)
    const chain = await verifyLedger(store)
    assert.equal(chain.ok, true)
    assert.equal(chain.checked, head.position)

    const summary = [...counts].map(([k, v]) => `${k}=${v}`).join(' ')
    console.log(
      `replay: ${head.position} events, ${recorded.length} decisions identical on replay (${summary}); ` +
        `${names.length} derived states identical after rebuild (${names.map((n) => `${n}:${liveDumps.get(n)?.length}`).join(' ')})`,
    )
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
