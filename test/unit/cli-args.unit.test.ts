import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { COMMAND_NAMES, helpText, parseCommandLine } from '../../src/cli/args.js'
import { UsageError } from '../../src/cli/errors.js'

/** a real note verifier key (Ed25519), as --key takes it */
const VKEY = 'log.example+f83fe295+AUVSp+EQPk5pwTA+rQDupp2yEQt2PTcfAHrUbm4YtGt5'

const common = { json: false, dataDir: undefined }

describe('cli: the command line', () => {
  const cases: Array<[string[], unknown]> = [
    [['serve'], { command: 'serve', ...common }],
    [['verify'], { command: 'verify', checkpoint: undefined, keys: [], ...common }],
    [
      ['verify', '--checkpoint', 'kept.checkpoint', '--key', VKEY],
      { command: 'verify', checkpoint: 'kept.checkpoint', keys: [VKEY], ...common },
    ],
    [
      ['witness', '--url', 'https://ledger.example/', '--key', VKEY, '--state', 's'],
      {
        command: 'witness',
        url: 'https://ledger.example',
        keys: [VKEY],
        state: 's',
        follow: false,
        intervalSeconds: 60,
        metrics: undefined,
        ...common,
      },
    ],
    [['head', '--json'], { command: 'head', json: true, dataDir: undefined }],
    [['replay'], { command: 'replay', check: false, counterfactual: null, ...common }],
    [['replay', '--check'], { command: 'replay', check: true, counterfactual: null, ...common }],
    [
      ['replay', '--policy-version', '7', '--from', '120', '--to', '900'],
      {
        command: 'replay',
        check: false,
        counterfactual: { policy: { version: 7 }, from: 120, to: 900 },
        ...common,
      },
    ],
    [
      ['replay', '--policy', 'draft.json'],
      {
        command: 'replay',
        check: false,
        counterfactual: { policy: { file: 'draft.json' }, from: undefined, to: undefined },
        ...common,
      },
    ],
    [
      ['token', 'issue', '--sub', 'agent-1', '--role', 'agent', '--role=observer', '--expires', '30m'],
      {
        command: 'token issue',
        sub: 'agent-1',
        roles: ['agent', 'observer'],
        approvalRoles: [],
        expires: '30m',
        audience: undefined,
        ...common,
      },
    ],
    [
      ['token', 'issue', '--sub', 'auditor@example.org', '--role', 'auditor', '--role', 'auditor'],
      {
        command: 'token issue',
        sub: 'auditor@example.org',
        roles: ['auditor'],
        approvalRoles: [],
        expires: undefined,
        audience: undefined,
        ...common,
      },
    ],
    [
      ['token', 'issue', '--sub', 'kafka-1', '--role', 'agent', '--audience', 'governance-kafka'],
      {
        command: 'token issue',
        sub: 'kafka-1',
        roles: ['agent'],
        approvalRoles: [],
        expires: undefined,
        audience: 'governance-kafka',
        ...common,
      },
    ],
    [
      ['token', 'issue', '--sub', 'cab-1', '--role', 'approver', '--approval-role', 'change-board'],
      {
        command: 'token issue',
        sub: 'cab-1',
        roles: ['approver'],
        approvalRoles: ['change-board'],
        expires: undefined,
        audience: undefined,
        ...common,
      },
    ],
    [
      ['audit', 'action', 'p-17', '--data-dir', 'ledger-data'],
      { command: 'audit action', proposalId: 'p-17', json: false, dataDir: 'ledger-data' },
    ],
    // options may come before the words that name the command
    [
      ['--json', 'audit', 'agent', 'agent-2'],
      { command: 'audit agent', agentId: 'agent-2', json: true, dataDir: undefined },
    ],
    [['metrics'], { command: 'metrics', window: 'hour', from: undefined, to: undefined, ...common }],
    [
      ['audit', 'agent', 'agent-2', '--as-of', '1200'],
      { command: 'audit agent', agentId: 'agent-2', asOf: 1200, ...common },
    ],
    [
      ['open-actions', '--as-of', '2026-01-05T08:00:00Z'],
      {
        command: 'open-actions',
        state: undefined,
        agentId: undefined,
        environment: undefined,
        asOf: '2026-01-05T08:00:00Z',
        ...common,
      },
    ],
    [
      ['metrics', '--window', 'day', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-31T00:00:00.000Z'],
      {
        command: 'metrics',
        window: 'day',
        from: '2026-01-01T00:00:00Z',
        to: '2026-01-31T00:00:00.000Z',
        ...common,
      },
    ],
    [
      ['survival'],
      {
        command: 'survival',
        window: 'day',
        from: undefined,
        to: undefined,
        workflow: undefined,
        agentId: undefined,
        environment: undefined,
        ...common,
      },
    ],
    [
      [
        'survival',
        '--workflow',
        'kubectl.scale',
        '--agent',
        'agent-1',
        '--environment',
        'staging',
        '--window',
        'hour',
      ],
      {
        command: 'survival',
        window: 'hour',
        from: undefined,
        to: undefined,
        workflow: 'kubectl.scale',
        agentId: 'agent-1',
        environment: 'staging',
        ...common,
      },
    ],
    [
      ['open-actions', '--state', 'failed', '--agent', 'agent-1', '--environment', 'production'],
      {
        command: 'open-actions',
        state: 'failed',
        agentId: 'agent-1',
        environment: 'production',
        ...common,
      },
    ],
    [['--help'], { command: 'help', topic: null }],
    [['-h'], { command: 'help', topic: null }],
    [['help'], { command: 'help', topic: null }],
    [['help', 'audit', 'action'], { command: 'help', topic: 'audit action' }],
    [['replay', '--help'], { command: 'help', topic: 'replay' }],
    [['token', 'issue', '-h'], { command: 'help', topic: 'token issue' }],
    [['--version'], { command: 'version' }],
  ]
  for (const [argv, expected] of cases) {
    it(`reads: ${argv.join(' ')}`, () => {
      assert.deepEqual(parseCommandLine(argv), expected)
    })
  }

  const refused: Array<[string[], RegExp]> = [
    [[], /name a command/],
    [['frob'], /unknown command 'frob'/],
    [['audit'], /audit: name a subcommand: action or agent/],
    [['audit', 'frob', 'x'], /unknown subcommand 'frob'/],
    [['token'], /token: name a subcommand: issue/],
    [['audit', 'action'], /audit action: expects PROPOSAL_ID/],
    [['audit', 'action', 'p-1', 'p-2'], /audit action: expects PROPOSAL_ID and nothing else/],
    [['audit', 'action', 'not an id'], /PROPOSAL_ID: letters, digits/],
    [['verify', 'extra'], /verify: takes no argument/],
    [['verify', '--bogus'], /verify: unknown option --bogus/],
    [['verify', '--key', VKEY], /--key is for --checkpoint/],
    [['verify', '--checkpoint', 'k', '--key', 'not a key'], /--key: /],
    [['verify', '--checkpoint', 'k', '--key', VKEY.replace(/\+[0-9a-f]{8}\+/, '+00000000+')], /--key: /],
    [['witness', '--url', 'https://l.example', '--state', 's'], /at least one --key is required/],
    [['witness', '--url', 'file:///etc', '--key', VKEY, '--state', 's'], /--url: an http\(s\) URL/],
    [['witness', '--url', 'https://l.example', '--key', VKEY], /--state is required/],
    [['serve', '--json'], /serve: unknown option --json/],
    [['token', 'issue', '--role', 'agent'], /--sub is required/],
    [['token', 'issue', '--sub', 'a'], /at least one --role/],
    [
      ['token', 'issue', '--sub', 'a', '--role', 'agent', '--approval-role', 'cab'],
      /--approval-role is for a token with --role approver/,
    ],
    [['token', 'issue', '--sub', 'a', '--role', 'root'], /--role root/],
    [['token', 'issue', '--sub', 'a', '--role', 'agent', '--expires', 'forever'], /--expires forever/],
    [['token', 'issue', '--sub', 'a', '--role', 'agent', '--expires', '9999999w'], /--expires 9999999w/],
    [['token', 'issue', '--sub', 'a', '--role', 'agent', '--audience', 'two words'], /--audience: /],
    [['token', 'issue', '--sub'], /token issue: .*--sub/],
    [['metrics', '--window', 'week'], /--window/],
    [['metrics', '--from', 'yesterday'], /--from: an ISO 8601 time/],
    [
      ['metrics', '--from', '2026-02-01T00:00:00Z', '--to', '2026-01-01T00:00:00Z'],
      /--from: must not be after --to/,
    ],
    [['survival', '--workflow', 'kubectl'], /--workflow: a workflow: <tool>.<action>/],
    [['survival', '--workflow', 'a.b.c'], /--workflow/],
    [['survival', '--agent', 'not an id'], /--agent: letters, digits/],
    [['survival', '--window', 'week'], /--window/],
    [
      ['survival', '--from', '2026-02-01T00:00:00Z', '--to', '2026-01-01T00:00:00Z'],
      /--from: must not be after --to/,
    ],
    [['open-actions', '--state', 'done'], /--state/],
    [['metrics', '--as-of', 'last tuesday'], /--as-of: a ledger position .* or an ISO 8601 UTC time/],
    [['audit', 'action', 'p-1', '--as-of', '1.5'], /--as-of: /],
    [['open-actions', '--as-of', '2026-01-05T08:00:00+01:00'], /--as-of: /],
    [['open-actions', '--environment', 'Production'], /--environment: lower-case/],
    [['head', '--data-dir', ''], /--data-dir: must not be empty/],
    [['replay', '--policy', 'a.json', '--policy-version', '2'], /exclusive/],
    [['replay', '--check', '--policy-version', '2'], /--check and --policy are exclusive/],
    [['replay', '--from', '3'], /--from and --to need --policy/],
    [['replay', '--policy-version', 'v7'], /--policy-version/],
    [['replay', '--policy-version', '7', '--from', '9', '--to', '3'], /--from: must not be after --to/],
  ]
  for (const [argv, message] of refused) {
    it(`refuses with a usage error: ${argv.join(' ') || '(nothing)'}`, () => {
      assert.throws(
        () => parseCommandLine(argv),
        (error: unknown) => error instanceof UsageError && message.test(error.message),
      )
    })
  }
})

describe('cli: help', () => {
  it('lists every command in the overview, with the exit codes', () => {
    const text = helpText(null)
    for (const name of COMMAND_NAMES) assert.match(text, new RegExp(`^  ${name} `, 'm'))
    assert.match(text, /Exit codes: 0 done, 1 failed/)
  })

  it('says that the read commands work offline, and that verify opens the ledger read-only', () => {
    for (const name of ['audit action', 'audit agent', 'metrics', 'survival', 'open-actions'] as const) {
      assert.match(helpText(name), /Works offline on the data folder/, name)
    }
    assert.match(helpText('verify'), /opened read-only/)
    assert.match(helpText('replay'), /Stop the service first/)
  })

  it('shows each command its usage and every option it takes', () => {
    const text = helpText('token issue')
    assert.match(text, /^usage: governance-ledger token issue --sub ID --role ROLE/)
    for (const option of ['--sub ID', '--role ROLE', '--expires TIME', '--json', '--data-dir DIR', '--help'])
      assert.ok(text.includes(option), option)
  })
})
