import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { bearerChallenge } from '../../src/http/errors.js'

/** RFC 6750 section 3: `Bearer` then comma-separated auth-params whose quoted values keep to %x20-21 / %x23-5B / %x5D-7E. */
const CHALLENGE = /^Bearer ((?:[a-z_]+="[\x20\x21\x23-\x5b\x5d-\x7e]*"(?:, |$))+)$/

const attributes = (header: string): Record<string, string> => {
  const match = CHALLENGE.exec(header)
  assert.ok(match, `not an RFC 6750 challenge: ${JSON.stringify(header)}`)
  return Object.fromEntries(
    [...(match[1] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
  )
}

describe('the bearer challenge (WWW-Authenticate)', () => {
  it('names the realm alone when no token was sent', () => {
    assert.equal(bearerChallenge(), 'Bearer realm="governance-ledger"')
  })

  it('adds the error and its description when a token was refused or is not enough', () => {
    assert.deepEqual(
      attributes(bearerChallenge({ error: 'invalid_token', description: 'the token has expired' })),
      {
        realm: 'governance-ledger',
        error: 'invalid_token',
        error_description: 'the token has expired',
      },
    )
    assert.deepEqual(
      attributes(
        bearerChallenge({ error: 'insufficient_scope', description: 'this needs one of the roles: auditor' }),
      ),
      {
        realm: 'governance-ledger',
        error: 'insufficient_scope',
        error_description: 'this needs one of the roles: auditor',
      },
    )
  })

  it('keeps a description to the characters RFC 6750 allows: no quote, backslash or line break shapes the header', () => {
    const hostile = 'a" , error="insufficient_scope\\"\r\nSet-Cookie: x=1\u0000 é'
    const header = bearerChallenge({ error: 'invalid_token', description: hostile })
    const found = attributes(header)
    assert.deepEqual(Object.keys(found), ['realm', 'error', 'error_description'])
    assert.equal(found.error, 'invalid_token')
    assert.equal(found.error_description, "a' , error='insufficient_scope/'??Set-Cookie: x=1? ?")
    assert.doesNotMatch(header, /[\r\n]/)
    assert.ok(bearerChallenge({ error: 'invalid_token', description: 'x'.repeat(5000) }).length < 400)
  })
})

describe('CORS_ALLOWED_ORIGINS', () => {
  const origins = (value: string) => loadConfig({ CORS_ALLOWED_ORIGINS: value }).CORS_ALLOWED_ORIGINS

  it('is unset by default: no origin is allowed', () => {
    assert.equal(loadConfig({}).CORS_ALLOWED_ORIGINS, undefined)
  })

  it('reads a comma-separated list of origins', () => {
    assert.deepEqual(origins('https://dashboard.example.com, http://localhost:5173,http://[::1]:8081'), [
      'https://dashboard.example.com',
      'http://localhost:5173',
      'http://[::1]:8081',
    ])
  })

  it('refuses at start whatever is not an origin as a browser sends it, and says why', () => {
    const refused: Array<[string, RegExp]> = [
      ['*', /\* is not accepted: list the origins/],
      ['https://dashboard.example.com/', /no path; write https:\/\/dashboard\.example\.com$/m],
      ['https://dashboard.example.com/app?x=1', /no path; write https:\/\/dashboard\.example\.com$/m],
      ['HTTPS://Dashboard.example.com', /write https:\/\/dashboard\.example\.com$/m],
      ['https://dashboard.example.com:443', /write https:\/\/dashboard\.example\.com$/m],
      ['ftp://files.example.com', /not an http:\/\/ or https:\/\/ origin/],
      ['dashboard.example.com', /"dashboard\.example\.com" is not an origin: scheme:\/\/host\[:port\]/],
      ['null', /"null" is not an origin/],
      ['https://a.example.com,,https://b.example.com', /"" is not an origin/],
    ]
    for (const [value, reason] of refused)
      assert.throws(
        () => origins(value),
        (e: Error) => /CORS_ALLOWED_ORIGINS/.test(e.message) && reason.test(e.message),
        value,
      )
  })

  it('never repeats a password written into an origin', () => {
    assert.throws(
      () => origins('https://admin:hunter2@dashboard.example.com'),
      (e: Error) => /no user name or password/.test(e.message) && !e.message.includes('hunter2'),
    )
  })
})
