// The ledger's integrity: its head and how far each reader has got, the last signed checkpoint, the whole hash
// chain verified, and the ledger verified against the checkpoint.
import { get, post } from '../api.js'
import { errorBox, h, replace, stat, table } from '../dom.js'
import type { Page } from '../main.js'

interface Consumer {
  position: number
  lag: number
}
interface Head {
  position: number
  hash: string
  decision: Consumer
  views: Record<string, Consumer>
  tree: Consumer
}
interface Verification {
  ok: boolean
  checked: number
  head: { position: number; hash: string }
  firstFault: { kind: string; position: number } | null
}
interface CheckpointVerification {
  ok: boolean
  verdict: string
  checkpoint: { origin: string; size: number; rootHash: string }
  reason: string
}

export const ledgerPage: Page = async ({ main }) => {
  const [head, verification, checkpoint] = await Promise.all([
    get<Head>('/v1/ledger/head'),
    get<Verification>('/v1/ledger/verify'),
    get<string>('/v1/checkpoints/latest').catch(() => null),
  ])
  const checked = checkpoint
    ? await post<CheckpointVerification>('/v1/ledger/checkpoint-verifications', { checkpoint }).catch(
        (e: unknown) => e,
      )
    : null
  replace(
    main,
    h('h1', {}, 'Ledger integrity'),
    h(
      'dl',
      { class: 'stats' },
      stat('Head position', head.position, 'head.position'),
      stat(
        'Hash chain',
        h(
          'span',
          { class: `badge ${verification.ok ? 'pass' : 'fail'}` },
          verification.ok ? 'verified' : 'BROKEN',
        ),
        'verify.ok',
        verification.ok
          ? `${verification.checked} events checked`
          : `first fault: ${verification.firstFault?.kind} at ${verification.firstFault?.position}`,
      ),
      stat(
        'Against the last checkpoint',
        checked && typeof checked === 'object' && 'verdict' in checked
          ? h(
              'span',
              { class: `badge ${(checked as CheckpointVerification).ok ? 'pass' : 'fail'}` },
              (checked as CheckpointVerification).verdict,
            )
          : '—',
        'checkpoint.verdict',
        checkpoint ? undefined : 'no checkpoint cut yet',
      ),
    ),
    h('h2', {}, 'Head'),
    h('p', {}, 'Hash of the last event: ', h('code', { class: 'hash', 'data-head-hash': '' }, head.hash)),
    table(
      'How far the decision service, each read model and the Merkle tree have got',
      ['reader', 'position', 'events behind'],
      [
        ['decision service', head.decision.position, head.decision.lag],
        ...Object.entries(head.views).map(([name, c]) => [`read model: ${name}`, c.position, c.lag]),
        ['Merkle tree', head.tree.position, head.tree.lag],
      ],
    ),
    h('h2', {}, 'Last signed checkpoint'),
    checkpoint ? h('pre', { 'data-checkpoint': '' }, checkpoint) : h('p', {}, 'No checkpoint was cut yet.'),
    checked instanceof Error ? errorBox(checked) : null,
    checked && !(checked instanceof Error) && typeof checked === 'object'
      ? h('p', {}, (checked as CheckpointVerification).reason)
      : null,
  )
  return undefined
}
