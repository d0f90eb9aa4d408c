import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'

/** Runs the CLI in-process with captured output and only the environment given. */
const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    env,
  })
  return { code, stdout, stderr }
}

describe('cli: exit codes and the one-line error', () => {
  it('prints help on stdout and exits 0', async () => {
    const { code, stdout, stderr } = await run(['--help'])
    assert.equal(code, 0)
    assert.match(stdout, /^usage: governance-ledger <command>/)
    assert.equal(stderr, '')
  })

  it('prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    const { code, stdout } = await run(['--version'])
    assert.equal(code, 0)
    assert.equal(stdout, `${pkg.version}\n`)
  })

  it('exits 2 on a wrong command line, with one line on stderr and nothing on stdout', async () => {
    const { code, stdout, stderr } = await run(['verify', '--nope'])
    assert.equal(code, 2)
    assert.equal(stdout, '')
    assert.equal(
      stderr,
      'governance-ledger: verify: unknown option --nope (see governance-ledger verify --help)\n',
    )
  })

  it('exits 2 on a bad configuration, naming every bad variable on one line', async () => {
    const { code, stderr } = await run(['head'], { PORT: '99999', LOG_LEVEL: 'loud' })
    assert.equal(code, 2)
    assert.equal(stderr.split('\n').length, 2, 'one line and its newline')
    assert.match(stderr, /^governance-ledger: invalid configuration: .*PORT: .*; LOG_LEVEL: /)
  })

  it('exits 1 when token issue is asked for outside embedded auth, before touching any file', async () => {
    const { code, stderr } = await run(['token', 'issue', '--sub', 'a', '--role', 'agent'], {
      AUTH_MODE: 'jwks',
      AUTH_JWKS_URL: 'https://idp.example.org/.well-known/jwks.json',
    })
    assert.equal(code, 1)
    assert.match(stderr, /AUTH_MODE is jwks: issue tokens with your identity provider/)
  })
})
