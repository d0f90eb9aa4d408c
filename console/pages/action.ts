// One action: what changed, who changed it, how fast it can be undone; its timeline with each event's id, hash
// and proof of inclusion in the ledger's Merkle tree; every verdict with every check.
import { get } from '../api.js'
import { h, link, pairs, replace, seconds, table, time } from '../dom.js'
import type { Page } from '../main.js'
import type { ActionAudit, CheckResult, InclusionProof } from '../types.js'

const checksTable = (caption: string, checks: readonly CheckResult[], key: string) =>
  table(
    caption,
    ['check', 'status', 'reason'],
    checks.map((c) => [c.check, h('span', { class: `badge ${c.status}` }, c.status), c.reason]),
    { 'data-checks': key },
  )

const proofOf = (proof: InclusionProof): HTMLElement =>
  h(
    'div',
    { class: 'proof', 'data-proof': String(proof.position) },
    `leaf ${proof.leafIndex} of a tree of ${proof.treeSize}, root `,
    h('code', {}, proof.rootHash),
    `, ${proof.hashes.length} hashes`,
  )

export const actionPage: Page = async ({ main, param }) => {
  const audit = await get<ActionAudit>(`/v1/audit/actions/${encodeURIComponent(param)}`)
  const { what, who, howFast } = audit
  // each verdict as the ledger holds it, with its checks, from the event its proof of inclusion carries
  const proofs = new Map<number, InclusionProof | Error>()
  const prove = async (position: number): Promise<InclusionProof | Error> => {
    const known = proofs.get(position)
    if (known) return known
    const found = await get<InclusionProof>(`/v1/ledger/proofs/inclusion?position=${position}`).catch(
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    )
    proofs.set(position, found)
    return found
  }
  const positionOf = new Map(audit.timeline.map((e) => [e.eventId, e.position]))
  const verdictEvents = await Promise.all(
    audit.verdicts.map(async (v) => {
      const position = positionOf.get(v.eventId)
      return { verdict: v, proof: position === undefined ? null : await prove(position) }
    }),
  )

  const proofCell = (position: number) => {
    const cell = h('td', {})
    const known = proofs.get(position)
    if (known && !(known instanceof Error)) {
      cell.append(proofOf(known))
      return cell
    }
    const button = h(
      'button',
      {
        type: 'button',
        class: 'quiet',
        onclick: async () => {
          button.disabled = true
          const proof = await prove(position)
          replace(
            cell,
            proof instanceof Error ? h('span', { class: 'error' }, proof.message) : proofOf(proof),
          )
        },
      },
      `Prove position ${position}`,
    )
    cell.append(button)
    return cell
  }

  replace(
    main,
    h('h1', {}, 'Action ', h('code', {}, audit.proposalId)),
    h(
      'p',
      { class: 'lead' },
      h('span', { class: `badge ${audit.outcome}`, 'data-outcome': audit.outcome }, audit.outcome),
      audit.violation ? h('span', { class: 'badge fail' }, 'violation') : null,
      ' submitted ',
      time(audit.submittedAt),
      ` · ledger position ${audit.asOf}`,
    ),
    h(
      'div',
      { class: 'grid' },
      pairs('what', 'What changed', [
        ['tool.action', `${what.tool}.${what.action}`],
        ['resource', `${what.resource} in ${what.environment}`],
        ['version', `${what.resourceVersionBefore} → ${what.resourceVersionAfter ?? 'not changed yet'}`],
        ['action digest', h('code', {}, what.actionDigest)],
        ['plan', h('pre', {}, JSON.stringify(what.plan, null, 2))],
      ]),
      pairs('who', 'Who changed it', [
        ['agent', link(`#/agent/${encodeURIComponent(who.agentId)}`, who.agentId)],
        ['executing identity', who.executingIdentity],
        ['executor', who.executor ?? '—'],
        ['approvers', who.approvers.map((a) => `${a.approver} (${a.role})`).join(', ') || '—'],
        [
          'policy',
          who.policyVersion === null ? '—' : `v${who.policyVersion}, owned by ${who.policyOwner ?? '—'}`,
        ],
        [
          'kill switches',
          who.killSwitchActors
            .map((k) => `${k.action} by ${k.actor} (${k.scope}${k.target ? ` ${k.target}` : ''})`)
            .join('; ') || '—',
        ],
      ]),
      pairs('how-fast', 'How fast it can be undone', [
        [
          'rollback expected in',
          seconds(howFast.rollbackExpectedSeconds),
          { 'data-metric': 'rollbackExpected' },
        ],
        ['failed at', time(howFast.failedAt)],
        ['recovered at', time(howFast.recoveredAt)],
        ['time to recovery', seconds(howFast.timeToRecoverySeconds), { 'data-metric': 'timeToRecovery' }],
      ]),
    ),
    h('h2', {}, 'Verdicts'),
    audit.currentVerdict
      ? checksTable(
          `Latest verdict: revision ${audit.currentVerdict.revision}, ${audit.currentVerdict.decision}` +
            `${audit.currentVerdict.revoked ? ', revoked' : ''}${audit.currentVerdict.expired ? ', expired' : ''}` +
            ` (expires ${audit.currentVerdict.expiresAt})`,
          audit.currentVerdict.checks,
          'current',
        )
      : h('p', {}, 'No verdict yet.'),
    h(
      'details',
      { open: audit.verdicts.length <= 6 },
      h('summary', {}, `Every revision (${audit.verdicts.length})`),
      verdictEvents.map(({ verdict, proof }) => {
        const data =
          proof && !(proof instanceof Error) ? (proof.event.data as { checks?: CheckResult[] }) : null
        return checksTable(
          `Revision ${verdict.revision}: ${verdict.decision} (verdict ${verdict.verdictId})`,
          data?.checks ?? [],
          `revision-${verdict.revision}`,
        )
      }),
    ),
    h('h2', {}, 'Timeline'),
    h(
      'table',
      { 'data-timeline': '' },
      h('caption', {}, 'Every event of the action in ledger order, with its hash and its proof of inclusion'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['position', 'event', 'recorded', 'actor', 'event id', 'hash', 'proof of inclusion'].map((name) =>
            h('th', { scope: 'col' }, name),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        audit.timeline.map((e) =>
          h(
            'tr',
            { 'data-position': String(e.position) },
            h('td', { class: 'num' }, e.position),
            h('td', {}, e.type),
            h('td', {}, time(e.recordedAt)),
            h('td', {}, e.actor),
            h('td', {}, h('code', {}, e.eventId)),
            h('td', {}, h('code', { class: 'hash' }, e.hash)),
            proofCell(e.position),
          ),
        ),
      ),
    ),
  )
  return undefined
}
