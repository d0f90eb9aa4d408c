import { parseArgs } from 'node:util'
import { z } from 'zod'
import type { OpenState } from '../../projections/open-actions.js'
import { type Moment, MomentText } from '../application/as-of.js'
import { Lifetime } from '../auth/lifetime.js'
import { Role } from '../auth/tokens.js'
import { VerifierKeyText } from '../checkpoint/note.js'
import { Environment, Identifier, ImpactClass, WorkflowName } from '../domain/events.js'
import { KEY_USES, type KeyUse } from '../keys/key-list.js'
import type { GateCheckOptions } from './commands/gate.js'
import type { WitnessOptions } from './commands/witness.js'
import { UsageError } from './errors.js'

export const COMMAND_NAMES = [
  'serve',
  'token issue',
  'audit action',
  'audit agent',
  'metrics',
  'survival',
  'open-actions',
  'replay',
  'verify',
  'witness',
  'head',
  'keys rotate',
  'gate check',
] as const
export type CommandName = (typeof COMMAND_NAMES)[number]

interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly multiple?: boolean
  /** the placeholder shown in help */
  readonly value?: string
  readonly description: string
}

interface CommandSpec {
  readonly usage: string
  readonly summary: string
  readonly description: readonly string[]
  readonly args: readonly string[]
  readonly options: Readonly<Record<string, OptionSpec>>
}

const OFFLINE_READ = [
  'Works offline on the data folder (DATA_DIR, or --data-dir): it needs no running service. It first',
  'brings the read models in derived.db up to date with the ledger, then reads them; beside a running',
  'service that is safe (a batch commits only on the checkpoint it started from).',
]

const dataDir: OptionSpec = {
  type: 'string',
  value: 'DIR',
  description: 'the data folder (default: DATA_DIR, else ./data)',
}
const json: OptionSpec = { type: 'boolean', description: 'one JSON document on stdout, for scripts' }
const asOf: OptionSpec = {
  type: 'string',
  value: 'MOMENT',
  description:
    'answer as of a ledger position (0 to the head), or an ISO 8601 UTC time (the last position recorded at or before it)',
}

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  serve: {
    usage: 'serve',
    summary: 'run the service: ledger, decision service, projections, HTTP API',
    description: [
      'Runs the service as `npm start` does, configured by the environment (see docs/operations.md).',
      'On the first start of an embedded data folder it prints one bootstrap admin token.',
      'SIGTERM or SIGINT drains the requests, saves the checkpoints and exits.',
    ],
    args: [],
    options: { 'data-dir': dataDir },
  },
  'token issue': {
    usage:
      'token issue --sub ID --role ROLE [--role ROLE ...] [--approval-role NAME ...] [--expires 24h] [--audience AUD]',
    summary: 'issue a bearer token signed with the embedded key',
    description: [
      'Signs a token with <DATA_DIR>/keys/token-signing.pem (AUTH_MODE=embedded only; the service',
      'creates the key on its first start). Prints the token alone, so that TOKEN=$(...) works.',
      'Each token carries its own jti (a policy admin revokes it by that) and lives at most',
      'AUTH_MAX_TOKEN_LIFETIME (default 24h), which --expires cannot exceed.',
      `Roles: ${Role.options.join(', ')}.`,
    ],
    args: [],
    options: {
      sub: { type: 'string', value: 'ID', description: 'the principal: an agent id, a person, a service' },
      role: {
        type: 'string',
        multiple: true,
        value: 'ROLE',
        description: 'a role it holds; repeat for more',
      },
      'approval-role': {
        type: 'string',
        multiple: true,
        value: 'NAME',
        description:
          "for an approver: a role it may approve in beside 'approver' (a change board, say); repeat for more",
      },
      expires: {
        type: 'string',
        value: 'TIME',
        description: 'lifetime: a number and s, m, h, d or w (default and at most AUTH_MAX_TOKEN_LIFETIME)',
      },
      audience: {
        type: 'string',
        value: 'AUD',
        description:
          'the aud claim (default AUTH_AUDIENCE); another audience makes a token the HTTP API refuses',
      },
      json,
      'data-dir': dataDir,
    },
  },
  'audit action': {
    usage: 'audit action PROPOSAL_ID [--as-of POSITION|TIME]',
    summary: 'what changed, who changed it, how fast it can be undone, and its timeline',
    description: OFFLINE_READ,
    args: ['PROPOSAL_ID'],
    options: { 'as-of': asOf, json, 'data-dir': dataDir },
  },
  'audit agent': {
    usage: 'audit agent AGENT_ID [--as-of POSITION|TIME]',
    summary: "an agent's authority per environment, pending promotions and its actions",
    description: OFFLINE_READ,
    args: ['AGENT_ID'],
    options: { 'as-of': asOf, json, 'data-dir': dataDir },
  },
  metrics: {
    usage: 'metrics [--window hour|day] [--from TIME] [--to TIME] [--as-of POSITION|TIME]',
    summary: 'the headline metrics: unsafe actions blocked, time to recovery',
    description: [
      'Per window: verdicts, unsafe actions blocked before execution (and their rate), executions that',
      'failed despite an allow, violations, and time to recovery (p50, p90, max, count); then the range',
      'summed with its breakdowns, and the failed executions not yet recovered with their age.',
      'Default range: the last 24 hours (hour) or 30 days (day), up to now.',
      ...OFFLINE_READ,
    ],
    args: [],
    options: {
      window: { type: 'string', value: 'hour|day', description: 'the window size (default hour)' },
      from: { type: 'string', value: 'TIME', description: 'ISO 8601 time: the first window holds it' },
      to: {
        type: 'string',
        value: 'TIME',
        description: 'ISO 8601 time: the last window holds it (default: now, or the time of --as-of)',
      },
      'as-of': asOf,
      json,
      'data-dir': dataDir,
    },
  },
  survival: {
    usage:
      'survival [--workflow TOOL.ACTION] [--agent ID] [--environment ENV] [--window hour|day] [--from TIME] [--to TIME] [--as-of POSITION|TIME]',
    summary: 'branch survival over time: simulation runs and the branch kinds that fail most',
    description: [
      'Per window: simulation runs, runs passed, adversarial branches run and survived, and the survival',
      'rate; then the range summed with every branch kind, the kinds that fail most and the trend (the rate',
      'of the latest window that ran an adversarial branch against the one before it), per workflow and',
      'per agent. Default range: the last 30 days (day) or 24 hours (hour), up to now.',
      ...OFFLINE_READ,
    ],
    args: [],
    options: {
      workflow: { type: 'string', value: 'TOOL.ACTION', description: 'only this workflow' },
      agent: { type: 'string', value: 'ID', description: 'only this agent’s simulations' },
      environment: { type: 'string', value: 'ENV', description: 'only this environment' },
      window: { type: 'string', value: 'hour|day', description: 'the window size (default day)' },
      from: { type: 'string', value: 'TIME', description: 'ISO 8601 time: the first window holds it' },
      to: { type: 'string', value: 'TIME', description: 'ISO 8601 time: the last window holds it' },
      'as-of': asOf,
      json,
      'data-dir': dataDir,
    },
  },
  'open-actions': {
    usage: 'open-actions [--state STATE] [--agent ID] [--environment ENV] [--as-of POSITION|TIME]',
    summary: 'actions in flight, each with its age in its current state',
    description: [
      'States: awaiting-evidence, blocked, allowed, executing, failed (not yet recovered).',
      ...OFFLINE_READ,
    ],
    args: [],
    options: {
      state: { type: 'string', value: 'STATE', description: 'only actions in this state' },
      agent: { type: 'string', value: 'ID', description: 'only this agent’s actions' },
      environment: { type: 'string', value: 'ENV', description: 'only this environment' },
      'as-of': asOf,
      json,
      'data-dir': dataDir,
    },
  },
  replay: {
    usage: 'replay [--check | --policy FILE | --policy-version N [--from POS|TIME] [--to POS|TIME]]',
    summary: 'rebuild every read model and the decision world from the ledger; --check re-decides it',
    description: [
      'Without --check: wipes and rebuilds every projection in derived.db, and the decision service’s',
      'world up to the position it had decided, from the ledger alone. Progress goes to stderr.',
      'With --check: re-decides the whole ledger in memory (no side effect at all) and compares every',
      'answer with the one the ledger records: the determinism check an auditor runs. Exit 1 on any',
      'difference.',
      'The ledger is opened read-only. Stop the service first for a rebuild: SQLite lets both run, but',
      'the service would read its read models while they are wiped. --check is safe while it runs.',
      'With --policy or --policy-version: counterfactual replay. Re-decides the ledger in memory with that',
      'policy in force from --from (every policy published inside the range is ignored) and lists every',
      'proposal whose standing verdict would flip, with the checks that changed, by agent, tool and',
      'environment. Changes nothing; exit 0.',
    ],
    args: [],
    options: {
      check: { type: 'boolean', description: 're-decide and compare, change nothing' },
      policy: { type: 'string', value: 'FILE', description: 'a policy draft (JSON) to re-decide under' },
      'policy-version': { type: 'string', value: 'N', description: 'a published policy to re-decide under' },
      from: {
        type: 'string',
        value: 'POS|TIME',
        description:
          'the first ledger position under that policy, or a UTC time: the first event recorded at or after it',
      },
      to: {
        type: 'string',
        value: 'POS|TIME',
        description:
          'the last ledger position re-decided, or a UTC time: the last event recorded at or before it',
      },
      json,
      'data-dir': dataDir,
    },
  },
  verify: {
    usage: 'verify [--checkpoint FILE [--key VKEY]...]',
    summary: 'verify the hash chain of the whole ledger, or the ledger against a kept checkpoint',
    description: [
      'Recomputes every link of the chain (hash = SHA-256(prevHash || canonical(event))) and names the',
      'first modified, deleted, inserted or reordered event. Exit 0 when it holds, 1 when it is broken.',
      'With --checkpoint: checks the ledger against a signed checkpoint kept outside it (by a witness, an',
      'auditor): its signature under the pinned --key (else the data folder’s checkpoint key list), then',
      'the chain and the Merkle tree up to its size, and names what is wrong: truncated (events removed',
      'from the end), altered (the chain breaks) or forked (the chain holds, but the history was rewritten).',
      'The ledger is opened read-only: safe while the service runs.',
    ],
    args: [],
    options: {
      checkpoint: {
        type: 'string',
        value: 'FILE',
        description: 'a signed checkpoint (C2SP tlog-checkpoint)',
      },
      key: {
        type: 'string',
        multiple: true,
        value: 'VKEY',
        description: 'a checkpoint verifier key to trust (name+hash+keydata); repeatable',
      },
      json,
      'data-dir': dataDir,
    },
  },
  witness: {
    usage: 'witness --url URL --key VKEY --state FILE [--follow] [--interval SECONDS] [--metrics FILE]',
    summary: 'follow the published checkpoints and alarm on a fork or a rollback',
    description: [
      'Reads the newest checkpoint the service publishes (URL/v1/checkpoints/latest), checks its signature',
      'under the pinned keys, and judges it against the last one it kept in --state: the same tree, a larger',
      'one proved consistent with it (a consistency proof from the service, with GOVERNANCE_TOKEN, an',
      'auditor token), or an alarm: a fork (another tree at a size, or a larger tree that does not hold the',
      'kept one), a rollback (a smaller tree) or another log. It keeps the new checkpoint only when it may.',
      'Each check is one JSON line on stderr; --metrics rewrites a Prometheus text file after each check.',
      'Exit 1 on an alarm (with --follow, at the first one), 0 otherwise. Keep --state where the service',
      'operator cannot write.',
    ],
    args: [],
    options: {
      url: { type: 'string', value: 'URL', description: 'the service, without /v1' },
      key: {
        type: 'string',
        multiple: true,
        value: 'VKEY',
        description: 'a checkpoint verifier key to trust (name+hash+keydata); repeatable',
      },
      state: { type: 'string', value: 'FILE', description: 'where the last accepted checkpoint is kept' },
      follow: { type: 'boolean', description: 'keep checking until an alarm' },
      interval: {
        type: 'string',
        value: 'SECONDS',
        description: 'between checks with --follow (default 60)',
      },
      metrics: {
        type: 'string',
        value: 'FILE',
        description: 'a Prometheus text file written after each check',
      },
      json,
    },
  },
  'gate check': {
    usage: 'gate check TOOL.ACTION [--agent ID] [--environment ENV] [--impact CLASS] [--url URL]',
    summary: 'whether a workflow passes the release gates of the policy in force; exit 1 when not',
    description: [
      'Asks the running service (--url, else GOVERNANCE_URL; a token with the auditor, policy-admin or',
      'simulator role in GOVERNANCE_TOKEN) whether the workflow passes every release gate that can apply',
      'to it, in the environment and at the impact class given or in any, with the figures of each: runs',
      'counted and required, survival and threshold, branch kinds exercised and missing. A per-agent gate',
      'needs --agent. Exit 0 on pass; 1 on fail, and whenever the service gives no clear answer, so that a',
      'pipeline that records its branch suite and then runs this stops on anything but a pass.',
    ],
    args: ['TOOL.ACTION'],
    options: {
      agent: { type: 'string', value: 'ID', description: 'the agent whose own runs a per-agent gate counts' },
      environment: { type: 'string', value: 'ENV', description: 'only the gates for this environment' },
      impact: { type: 'string', value: 'CLASS', description: 'only the gates for this impact class' },
      url: { type: 'string', value: 'URL', description: 'the service, without /v1 (default GOVERNANCE_URL)' },
      json,
    },
  },
  head: {
    usage: 'head',
    summary: 'the ledger head (position, hash, time) and how far each consumer has got',
    description: ['The ledger is opened read-only: safe while the service runs.'],
    args: [],
    options: { json, 'data-dir': dataDir },
  },
  'keys rotate': {
    usage: 'keys rotate --key verdict|token|checkpoint [--revoke-tokens]',
    summary: 'replace a signing key the data folder keeps; the old public key stays published',
    description: [
      'Writes a new key to <DATA_DIR>/keys and keeps the old public key in keys/public-keys.json, retired:',
      'the JWKS keeps every verdict key, so old verdicts stay verifiable, and the checkpoint key list every',
      'checkpoint key. Tokens signed with the old token key stay valid until they expire (at most',
      'AUTH_MAX_TOKEN_LIFETIME), unless --revoke-tokens. The running service signs with the old key until it',
      'restarts: restart it. A key given by VERDICT_KEY_FILE, TOKEN_KEY_FILE, CHECKPOINT_KEY_FILE or',
      'CHECKPOINT_SIGN_COMMAND is rotated by its owner where it is kept, not by this command.',
    ],
    args: [],
    options: {
      key: { type: 'string', value: 'KEY', description: 'the key to rotate: verdict, token or checkpoint' },
      'revoke-tokens': {
        type: 'boolean',
        description: 'with --key token: refuse the old key’s tokens from the restart on (the key leaked)',
      },
      json,
      'data-dir': dataDir,
    },
  },
}

/** The values common to commands: where the data is and how to print. */
export interface Common {
  readonly json: boolean
  readonly dataDir: string | undefined
}

export type WindowKind = 'hour' | 'day'

/** --as-of of the read commands: read the read models as of that moment; undefined: now. */
export interface AsOf {
  readonly asOf?: Moment
}

export const OPEN_STATES = [
  'awaiting-evidence',
  'blocked',
  'allowed',
  'executing',
  'failed',
] as const satisfies readonly OpenState[]

export type Invocation =
  | { readonly command: 'help'; readonly topic: CommandName | null }
  | { readonly command: 'version' }
  | ({ readonly command: 'serve' } & Common)
  | ({
      readonly command: 'token issue'
      readonly sub: string
      readonly roles: readonly Role[]
      readonly approvalRoles: readonly string[]
      /** as given; undefined: the longest AUTH_MAX_TOKEN_LIFETIME allows */
      readonly expires: string | undefined
      readonly audience: string | undefined
    } & Common)
  | ({ readonly command: 'audit action'; readonly proposalId: string } & AsOf & Common)
  | ({ readonly command: 'audit agent'; readonly agentId: string } & AsOf & Common)
  | ({
      readonly command: 'metrics'
      readonly window: WindowKind
      readonly from: string | undefined
      readonly to: string | undefined
    } & AsOf &
      Common)
  | ({
      readonly command: 'survival'
      readonly window: WindowKind
      readonly from: string | undefined
      readonly to: string | undefined
      readonly workflow: string | undefined
      readonly agentId: string | undefined
      readonly environment: string | undefined
    } & AsOf &
      Common)
  | ({
      readonly command: 'open-actions'
      readonly state: OpenState | undefined
      readonly agentId: string | undefined
      readonly environment: string | undefined
    } & AsOf &
      Common)
  | ({
      readonly command: 'replay'
      readonly check: boolean
      /** counterfactual replay: a draft file, or a published version, and the range */
      readonly counterfactual: {
        readonly policy: { readonly file: string } | { readonly version: number }
        readonly from: Moment | undefined
        readonly to: Moment | undefined
      } | null
    } & Common)
  | ({
      readonly command: 'verify'
      readonly checkpoint: string | undefined
      readonly keys: readonly string[]
    } & Common)
  | ({ readonly command: 'witness' } & WitnessOptions & Common)
  | ({ readonly command: 'head' } & Common)
  | ({ readonly command: 'gate check' } & GateCheckOptions & Common)
  | ({
      readonly command: 'keys rotate'
      readonly key: KeyUse
      /** the old token key's tokens are refused at once */
      readonly revokeTokens: boolean
    } & Common)

type Values = Record<string, string | boolean | string[] | undefined>

const GLOBAL_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const

/** Every option any command takes, so a first, lenient pass never mistakes an option's value for a word. */
const ALL_OPTIONS = Object.fromEntries(
  Object.values(COMMANDS).flatMap((spec) =>
    Object.entries(spec.options).map(([name, o]) => [name, { type: o.type }] as const),
  ),
)

const words = (argv: readonly string[]): string[] =>
  parseArgs({
    args: [...argv],
    options: { ...ALL_OPTIONS, ...GLOBAL_OPTIONS },
    allowPositionals: true,
    strict: false,
  }).positionals

/** Which command the words name, and the words left over as its arguments. */
const commandOf = (positionals: readonly string[]): { name: CommandName; rest: string[] } | null => {
  const [first, second, ...others] = positionals
  if (first === undefined) return null
  if (first === 'token' || first === 'audit' || first === 'keys' || first === 'gate') {
    const name = `${first} ${second ?? ''}` as CommandName
    if (second !== undefined && COMMANDS[name]) return { name, rest: others }
    const choices = COMMAND_NAMES.filter((c) => c.startsWith(`${first} `)).map((c) => c.split(' ')[1])
    throw new UsageError(
      second === undefined
        ? `${first}: name a subcommand: ${choices.join(' or ')}`
        : `${first}: unknown subcommand '${second}' (expected ${choices.join(' or ')})`,
    )
  }
  if ((COMMAND_NAMES as readonly string[]).includes(first)) {
    return { name: first as CommandName, rest: positionals.slice(1) }
  }
  throw new UsageError(`unknown command '${first}' (see governance-ledger --help)`)
}

const checked = <T>(schema: z.ZodType<T>, value: unknown, what: string): T => {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  throw new UsageError(`${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
}

const Position = z.coerce.number().int().positive()
/** a range's end: a position (from 1) or a UTC time */
const RangeMoment = MomentText.refine((moment) => typeof moment === 'string' || moment >= 1, {
  message: 'a ledger position from 1, or an ISO 8601 UTC time',
})

const Audience = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
const ServiceUrl = z.url({
  protocol: /^https?$/,
  error: 'an http(s) URL, like https://governance.example.com',
})
const Time = z.iso.datetime({ offset: true, message: 'an ISO 8601 time, like 2026-01-05T08:00:00Z' })

const str = (values: Values, name: string): string | undefined => {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

/** The window size and the range of a command that reads windows: --window, --from, --to. */
const windowsOf = (values: Values, byDefault: WindowKind) => {
  const window = checked(z.enum(['hour', 'day']), str(values, 'window') ?? byDefault, '--window')
  const from = str(values, 'from')
  const to = str(values, 'to')
  if (from !== undefined) checked(Time, from, '--from')
  if (to !== undefined) checked(Time, to, '--to')
  if (from !== undefined && to !== undefined && Date.parse(from) > Date.parse(to))
    throw new UsageError('--from: must not be after --to')
  return { window, from, to }
}

/** The moment of --as-of, checked. */
const asOfOf = (values: Values): AsOf => {
  const given = str(values, 'as-of')
  return given === undefined ? {} : { asOf: checked(MomentText, given, '--as-of') }
}

/** Builds the invocation of one command from its strictly parsed values and arguments. */
const build = (name: CommandName, values: Values, args: readonly string[]): Invocation => {
  const common: Common = { json: values.json === true, dataDir: str(values, 'data-dir') }
  if (common.dataDir === '') throw new UsageError('--data-dir: must not be empty')
  const [arg] = args
  switch (name) {
    case 'serve':
    case 'head':
      return { command: name, ...common }
    case 'verify': {
      const checkpoint = str(values, 'checkpoint')
      const keys = (values.key as string[] | undefined) ?? []
      if (checkpoint === undefined && keys.length > 0)
        throw new UsageError('verify: --key is for --checkpoint')
      if (checkpoint === '') throw new UsageError('--checkpoint: must not be empty')
      return {
        command: name,
        checkpoint,
        keys: keys.map((k) => checked(VerifierKeyText, k, '--key')),
        ...common,
      }
    }
    case 'witness': {
      const url = str(values, 'url')
      const state = str(values, 'state')
      const keys = (values.key as string[] | undefined) ?? []
      if (url === undefined) throw new UsageError('witness: --url is required')
      if (state === undefined || state === '') throw new UsageError('witness: --state is required')
      if (keys.length === 0)
        throw new UsageError('witness: at least one --key is required: pin the log’s key')
      const interval = str(values, 'interval') ?? '60'
      return {
        command: name,
        url: checked(ServiceUrl, url, '--url').replace(/\/+$/, ''),
        keys: keys.map((k) => checked(VerifierKeyText, k, '--key')),
        state,
        follow: values.follow === true,
        intervalSeconds: checked(z.coerce.number().min(0.05).max(86_400), interval, '--interval'),
        metrics: str(values, 'metrics'),
        ...common,
      }
    }
    case 'token issue': {
      const sub = str(values, 'sub')
      if (sub === undefined) throw new UsageError('token issue: --sub is required')
      const given = (values.role as string[] | undefined) ?? []
      if (given.length === 0) throw new UsageError('token issue: at least one --role is required')
      const roles = [...new Set(given.map((r) => checked(Role, r, `--role ${r}`)))]
      const approving = (values['approval-role'] as string[] | undefined) ?? []
      const approvalRoles = [...new Set(approving.map((r) => checked(Identifier, r, `--approval-role ${r}`)))]
      if (approvalRoles.length > 0 && !roles.includes('approver'))
        throw new UsageError('token issue: --approval-role is for a token with --role approver')
      const expires = str(values, 'expires')
      if (expires !== undefined) checked(Lifetime, expires, `--expires ${expires}`)
      const audience = str(values, 'audience')
      if (audience !== undefined) checked(Audience, audience, '--audience')
      const subject = checked(Identifier, sub, '--sub')
      return { command: name, sub: subject, roles, approvalRoles, expires, audience, ...common }
    }
    case 'audit action':
      return {
        command: name,
        proposalId: checked(Identifier, arg, 'PROPOSAL_ID'),
        ...asOfOf(values),
        ...common,
      }
    case 'audit agent':
      return { command: name, agentId: checked(Identifier, arg, 'AGENT_ID'), ...asOfOf(values), ...common }
    case 'metrics':
      return { command: name, ...windowsOf(values, 'hour'), ...asOfOf(values), ...common }
    case 'survival': {
      const workflow = str(values, 'workflow')
      const agentId = str(values, 'agent')
      const environment = str(values, 'environment')
      return {
        command: name,
        ...windowsOf(values, 'day'),
        workflow: workflow === undefined ? undefined : checked(WorkflowName, workflow, '--workflow'),
        agentId: agentId === undefined ? undefined : checked(Identifier, agentId, '--agent'),
        environment:
          environment === undefined ? undefined : checked(Environment, environment, '--environment'),
        ...asOfOf(values),
        ...common,
      }
    }
    case 'open-actions': {
      const state = str(values, 'state')
      const agentId = str(values, 'agent')
      const environment = str(values, 'environment')
      return {
        command: name,
        state: state === undefined ? undefined : checked(z.enum(OPEN_STATES), state, '--state'),
        agentId: agentId === undefined ? undefined : checked(Identifier, agentId, '--agent'),
        environment:
          environment === undefined ? undefined : checked(Environment, environment, '--environment'),
        ...asOfOf(values),
        ...common,
      }
    }
    case 'replay': {
      const file = str(values, 'policy')
      const version = str(values, 'policy-version')
      const from = str(values, 'from')
      const to = str(values, 'to')
      const check = values.check === true
      if (file !== undefined && version !== undefined)
        throw new UsageError('replay: --policy and --policy-version are exclusive')
      const policy =
        file !== undefined
          ? { file }
          : version !== undefined
            ? { version: checked(Position, version, '--policy-version') }
            : null
      if (policy === null && (from !== undefined || to !== undefined))
        throw new UsageError('replay: --from and --to need --policy or --policy-version')
      if (policy !== null && check) throw new UsageError('replay: --check and --policy are exclusive')
      const counterfactual =
        policy === null
          ? null
          : {
              policy,
              from: from === undefined ? undefined : checked(RangeMoment, from, '--from'),
              to: to === undefined ? undefined : checked(RangeMoment, to, '--to'),
            }
      if (
        typeof counterfactual?.from === 'number' &&
        typeof counterfactual.to === 'number' &&
        counterfactual.from > counterfactual.to
      )
        throw new UsageError('replay: --from: must not be after --to')
      return { command: name, check, counterfactual, ...common }
    }
    case 'gate check': {
      const url = str(values, 'url')
      const agentId = str(values, 'agent')
      const environment = str(values, 'environment')
      const impact = str(values, 'impact')
      return {
        command: name,
        workflow: checked(WorkflowName, arg, 'TOOL.ACTION'),
        agentId: agentId === undefined ? undefined : checked(Identifier, agentId, '--agent'),
        environment:
          environment === undefined ? undefined : checked(Environment, environment, '--environment'),
        impact: impact === undefined ? undefined : checked(ImpactClass, impact, '--impact'),
        url: url === undefined ? undefined : checked(ServiceUrl, url, '--url').replace(/\/+$/, ''),
        ...common,
      }
    }
    case 'keys rotate': {
      const key = str(values, 'key')
      if (key === undefined)
        throw new UsageError('keys rotate: --key is required (verdict, token or checkpoint)')
      const use = checked(z.enum(KEY_USES), key, '--key')
      const revokeTokens = values['revoke-tokens'] === true
      if (revokeTokens && use !== 'token')
        throw new UsageError('keys rotate: --revoke-tokens is for --key token')
      return { command: name, key: use, revokeTokens, ...common }
    }
  }
}

/** Reads the command line: the command, its arguments and options, each checked. Throws a UsageError. */
export const parseCommandLine = (argv: readonly string[]): Invocation => {
  let positionals: string[]
  try {
    positionals = words(argv)
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error))
  }
  if (positionals[0] === 'help') {
    const topic = positionals.length > 1 ? commandOf(positionals.slice(1)) : null
    return { command: 'help', topic: topic?.name ?? null }
  }
  const found = commandOf(positionals)
  const asksHelp = argv.includes('--help') || argv.includes('-h')
  if (found === null) {
    if (argv.includes('--version')) return { command: 'version' }
    if (asksHelp) return { command: 'help', topic: null }
    throw new UsageError('name a command (see governance-ledger --help)')
  }
  if (asksHelp) return { command: 'help', topic: found.name }
  const spec = COMMANDS[found.name]
  let parsed: { values: Values; positionals: string[] }
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.entries(spec.options).map(([name, o]) => [
          name,
          { type: o.type, multiple: o.multiple ?? false },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] }
  } catch (error) {
    const code = (error as { code?: unknown }).code
    const message =
      code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
        ? `unknown option ${/'([^']+)'/.exec(String(error))?.[1] ?? ''}`
        : error instanceof Error
          ? error.message.split('\n')[0]
          : String(error)
    throw new UsageError(`${found.name}: ${message} (see governance-ledger ${found.name} --help)`)
  }
  const args = parsed.positionals.slice(found.name.split(' ').length)
  if (args.length !== spec.args.length) {
    const expected =
      spec.args.length === 0 ? 'takes no argument' : `expects ${spec.args.join(' ')} and nothing else`
    throw new UsageError(`${found.name}: ${expected} (usage: governance-ledger ${spec.usage})`)
  }
  return build(found.name, parsed.values, args)
}

const optionLines = (options: Readonly<Record<string, OptionSpec>>): string[] => {
  const rows: Array<readonly [string, string]> = Object.entries(options).map(([name, o]) => [
    `--${name}${o.value ? ` ${o.value}` : ''}`,
    o.description,
  ])
  rows.push(['-h, --help', 'this help'])
  const width = Math.max(...rows.map(([left]) => left.length))
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`)
}

/** The help of one command, or the overview of all of them. */
export const helpText = (topic: CommandName | null): string => {
  if (topic !== null) {
    const spec = COMMANDS[topic]
    return [
      `usage: governance-ledger ${spec.usage} [options]`,
      '',
      `${spec.summary[0]?.toUpperCase() ?? ''}${spec.summary.slice(1)}.`,
      ...spec.description,
      '',
      'options:',
      ...optionLines(spec.options),
      '',
    ].join('\n')
  }
  const width = Math.max(...COMMAND_NAMES.map((c) => c.length))
  return [
    'usage: governance-ledger <command> [options]',
    '',
    'Decides whether an AI agent has earned the right to run a production action, and keeps the proof.',
    '',
    'commands:',
    ...COMMAND_NAMES.map((c) => `  ${c.padEnd(width)}  ${COMMANDS[c].summary}`),
    '',
    'Every command but serve works offline on the data folder (DATA_DIR, or --data-dir), configured by',
    'the same environment variables as the service. Human-readable output by default; --json prints',
    'one JSON document for scripts. Exit codes: 0 done, 1 failed (or the ledger is broken), 2 the',
    'command line or the configuration is wrong.',
    '',
    'governance-ledger <command> --help tells more about one command.',
    '',
  ].join('\n')
}
