import { createHash, createPrivateKey, createPublicKey, type KeyObject, verify } from 'node:crypto'
import { z } from 'zod'

// Signed notes (C2SP signed-note) and the checkpoints written in them (C2SP tlog-checkpoint), with Ed25519
// keys in the note formats: byte for byte what golang.org/x/mod/sumdb/note writes and opens. No I/O here.

/** A tree head: what a signed checkpoint commits to. */
export interface Checkpoint {
  /** the log's identity, also the name of the key that signs it */
  readonly origin: string
  /** how many leaves the tree holds */
  readonly size: number
  /** the RFC 9162 root of the tree at that size (32 bytes) */
  readonly rootHash: Uint8Array
  /** opaque lines after the root; none are written here */
  readonly extensions: readonly string[]
}

/** Signs a note's text with one Ed25519 key whose public half is `verifierKey`; the key may live elsewhere. */
export interface NoteSigner {
  /** the key's name: a checkpoint's origin */
  readonly name: string
  /** `<name>+<key hash>+<base64(0x01 || public key)>` */
  readonly verifierKey: string
  /** the 64-byte Ed25519 signature of the message */
  sign(message: Uint8Array): Promise<Uint8Array>
}

/** What is wrong with a note, a checkpoint or a key. */
export type CheckpointProblem = 'malformed' | 'too-large' | 'invalid-key' | 'unknown-key' | 'bad-signature'

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError'
  constructor(
    readonly reason: CheckpointProblem,
    message: string,
  ) {
    super(message)
  }
}

/** The largest note opened: 16 signatures of the largest post-quantum kind fit, with room to spare. */
export const MAX_NOTE_BYTES = 128 * 1024
/** The most signature lines a note may carry, witnesses' cosignatures included. */
export const MAX_NOTE_SIGNATURES = 100
/** The most lines a checkpoint's text may have: origin, size, root and extension lines. */
export const MAX_CHECKPOINT_LINES = 64

/** The signature type of Ed25519 in a note key. */
const ED25519 = 0x01
const HASH_BYTES = 32
const SIGNATURE_BYTES = 64
/** em dash, space: how every signature line starts */
const SIGNATURE_PREFIX = '\u2014 '

/** Standard base64 with its padding, as Go's base64.StdEncoding reads it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const LONE_SURROGATE = /\p{Surrogate}/u

/** Whether a text holds an ASCII control character other than newline: never in a note. */
const hasControl = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x20 && unit !== 0x0a) return true
  }
  return false
}
/** Unicode spaces (the White_Space property, as Go's unicode.IsSpace). */
const SPACE = /\p{White_Space}/u

const fromBase64 = (text: string): Uint8Array | null =>
  BASE64.test(text) ? new Uint8Array(Buffer.from(text, 'base64')) : null
const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'))

/** A key name: non-empty, with neither Unicode spaces nor plus signs. */
export const isKeyName = (name: string): boolean =>
  name !== '' && !SPACE.test(name) && !name.includes('+') && !hasControl(name) && !LONE_SURROGATE.test(name)

/** Why a key name is not one, or null. */
const keyNameProblem = (name: string): string | null =>
  isKeyName(name) ? null : `${JSON.stringify(name)} is not a key name: non-empty, no spaces, no +`

/** The key hash: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), big-endian. */
export const keyHash = (name: string, publicKey: Uint8Array): number =>
  createHash('sha256')
    .update(name, 'utf8')
    .update(Uint8Array.of(0x0a, ED25519))
    .update(publicKey)
    .digest()
    .readUInt32BE(0)

const hex8 = (hash: number): string => hash.toString(16).padStart(8, '0')

// DER prefixes of Ed25519 keys (RFC 8410), to build node key objects from their raw 32 bytes
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** The raw 32-byte public key of an Ed25519 key object (private or public). */
export const rawPublicKey = (key: KeyObject): Uint8Array => {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' })
  if (der.length !== SPKI_PREFIX.length + 32 || !der.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX))
    throw new CheckpointError('invalid-key', 'not an Ed25519 key')
  return new Uint8Array(der.subarray(SPKI_PREFIX.length))
}

/** The key object of a raw 32-byte Ed25519 public key (a verifier key's). */
export const ed25519PublicKey = (raw: Uint8Array): KeyObject =>
  createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })

/** A verifier key, parsed: who signs, with which public key. */
export interface VerifierKey {
  readonly name: string
  readonly hash: number
  readonly publicKey: Uint8Array
  /** the key as written, `<name>+<hash>+<keydata>` */
  readonly text: string
}

/** `<name>+<hash>+<keydata>` of an Ed25519 key, private or public: what verifiers are given. */
export const verifierKeyOf = (name: string, key: KeyObject): string => {
  const problem = keyNameProblem(name)
  if (problem) throw new CheckpointError('invalid-key', problem)
  const publicKey = rawPublicKey(key)
  return `${name}+${hex8(keyHash(name, publicKey))}+${toBase64(Uint8Array.of(ED25519, ...publicKey))}`
}

/** Splits at the first separator: the text before it, and the rest ('' when there is none). */
const chop = (text: string, separator: string): [string, string] => {
  const at = text.indexOf(separator)
  return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + separator.length)]
}

/** The hash and key data of a key text, checked; throws a CheckpointError naming what is wrong. */
const keyParts = (name: string, hash16: string, key64: string, what: string) => {
  const keyData = fromBase64(key64)
  if (!/^[0-9a-fA-F]{8}$/.test(hash16) || keyData === null || keyData.length === 0)
    throw new CheckpointError('invalid-key', `a malformed ${what}: <name>+<8 hex digits>+<base64 key>`)
  const problem = keyNameProblem(name)
  if (problem) throw new CheckpointError('invalid-key', `a malformed ${what}: ${problem}`)
  if (keyData[0] !== ED25519 || keyData.length !== 33)
    throw new CheckpointError(
      'invalid-key',
      `a ${what} of an unknown algorithm: only Ed25519 (type 0x01, 32 bytes) is known`,
    )
  return { hash: Number.parseInt(hash16, 16), keyData: keyData.subarray(1) }
}

/** Reads `<name>+<hash>+<keydata>` as Go's note.NewVerifier does; throws a CheckpointError 'invalid-key'. */
export const parseVerifierKey = (text: string): VerifierKey => {
  const [name, rest] = chop(text, '+')
  const [hash16, key64] = chop(rest, '+')
  const { hash, keyData } = keyParts(name, hash16, key64, 'verifier key')
  if (keyHash(name, keyData) !== hash)
    throw new CheckpointError('invalid-key', `the verifier key's hash ${hash16} is not the hash of its key`)
  return { name, hash, publicKey: keyData, text }
}

/** `PRIVATE+KEY+<name>+<hash>+<keydata>`: an Ed25519 private key in the note format (keep it secret). */
export const signerKeyOf = (name: string, privateKey: KeyObject): string => {
  const [, hash16] = verifierKeyOf(name, privateKey).split('+')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length)
  return `PRIVATE+KEY+${name}+${hash16}+${toBase64(Uint8Array.of(ED25519, ...seed))}`
}

/** Reads `PRIVATE+KEY+<name>+<hash>+<keydata>` as Go's note.NewSigner does; throws 'invalid-key'. */
export const parseSignerKey = (text: string): { name: string; privateKey: KeyObject } => {
  const [private1, rest1] = chop(text, '+')
  const [private2, rest2] = chop(rest1, '+')
  const [name, rest3] = chop(rest2, '+')
  const [hash16, key64] = chop(rest3, '+')
  if (private1 !== 'PRIVATE' || private2 !== 'KEY')
    throw new CheckpointError('invalid-key', 'a note private key starts with PRIVATE+KEY+')
  const { hash, keyData } = keyParts(name, hash16, key64, 'note private key')
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, keyData]),
    format: 'der',
    type: 'pkcs8',
  })
  // the hash is of the public key, which only the private key gives
  if (keyHash(name, rawPublicKey(privateKey)) !== hash)
    throw new CheckpointError('invalid-key', `the private key's hash ${hash16} is not the hash of its key`)
  return { name, privateKey }
}

/** Why a text cannot be (part of) a note, or null: UTF-8 text without control characters but newline. */
const textProblem = (text: string): string | null => {
  if (LONE_SURROGATE.test(text)) return 'it is not valid UTF-8'
  if (hasControl(text)) return 'it holds a control character other than newline'
  return null
}

/** The signed note (C2SP signed-note) of a text ending in a newline, with one signature; verified before. */
export const signNote = async (text: string, signer: NoteSigner): Promise<string> => {
  const problem = textProblem(text) ?? (text.endsWith('\n') ? null : 'it does not end with a newline')
  if (problem) throw new CheckpointError('malformed', `the note's text cannot be signed: ${problem}`)
  const key = parseVerifierKey(signer.verifierKey)
  if (key.name !== signer.name)
    throw new CheckpointError(
      'invalid-key',
      `the signer is named ${signer.name} but its verifier key ${key.name}`,
    )
  const message = utf8(text)
  const signature = await signer.sign(message)
  // a signer that lives elsewhere (a signing command, a KMS) may sign with another key than it declares
  if (
    signature.length !== SIGNATURE_BYTES ||
    !verify(null, message, ed25519PublicKey(key.publicKey), signature)
  )
    throw new CheckpointError(
      'bad-signature',
      `the signature ${signer.name} made does not verify under its verifier key ${signer.verifierKey}`,
    )
  const stamp = Buffer.alloc(4)
  stamp.writeUInt32BE(key.hash)
  const note = `${text}\n${SIGNATURE_PREFIX}${signer.name} ${toBase64(Uint8Array.of(...stamp, ...signature))}\n`
  if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES)
    throw new CheckpointError('too-large', `the note would exceed ${MAX_NOTE_BYTES} bytes`)
  return note
}

/** A signature line of a note: the key's name and hash, and the signature as written. */
export interface NoteSignature {
  readonly name: string
  readonly hash: number
  readonly base64: string
}

/** A note whose signatures were checked: its text, and who signed it among the keys known and unknown. */
export interface OpenedNote {
  readonly text: string
  readonly signatures: readonly NoteSignature[]
  readonly unverified: readonly NoteSignature[]
}

const malformed = (why: string) => new CheckpointError('malformed', `a malformed note: ${why}`)

/** The note as text, or a CheckpointError: bytes must be UTF-8; both are bounded before anything else. */
const noteText = (note: string | Uint8Array): string => {
  // a string's UTF-8 bytes are at least as many as its UTF-16 units: a long one is refused uncounted
  const bytes =
    typeof note !== 'string'
      ? note.length
      : note.length > MAX_NOTE_BYTES
        ? note.length
        : Buffer.byteLength(note, 'utf8')
  if (bytes > MAX_NOTE_BYTES)
    throw new CheckpointError('too-large', `the note is longer than ${MAX_NOTE_BYTES} bytes`)
  if (typeof note === 'string') return note
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note)
  } catch {
    throw malformed('it is not valid UTF-8')
  }
}

/** Verifier keys by name and hash; keys given twice count once, two keys sharing both are refused. */
const keysByNameAndHash = (verifierKeys: readonly string[]): Map<string, VerifierKey> => {
  const known = new Map<string, VerifierKey>()
  for (const text of verifierKeys) {
    const key = parseVerifierKey(text)
    const id = `${key.name}+${hex8(key.hash)}`
    const other = known.get(id)
    if (other && Buffer.compare(other.publicKey, key.publicKey) !== 0)
      throw new CheckpointError('invalid-key', `two verifier keys share the name and hash ${id}`)
    known.set(id, key)
  }
  return known
}

/**
 * Opens a signed note as Go's note.Open does: every signature by a known key must verify (one that does
 * not rejects the note), signatures by unknown keys are set aside, and at least one known key must have
 * signed. Throws a CheckpointError: malformed, too-large, invalid-key (a verifier key), unknown-key (no
 * known key signed it), bad-signature.
 */
export const openNote = (note: string | Uint8Array, verifierKeys: readonly string[]): OpenedNote => {
  const known = keysByNameAndHash(verifierKeys)
  const message = noteText(note)
  const problem = textProblem(message)
  if (problem) throw malformed(problem)
  const split = message.lastIndexOf('\n\n')
  if (split < 0) throw malformed('no blank line before the signatures')
  const text = message.slice(0, split + 1)
  const block = message.slice(split + 2)
  if (block === '' || !block.endsWith('\n')) throw malformed('the signatures do not end with a newline')
  const lines = block.slice(0, -1).split('\n')
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw new CheckpointError('too-large', `the note has more than ${MAX_NOTE_SIGNATURES} signatures`)
  const signed = utf8(text)
  const signatures: NoteSignature[] = []
  const unverified: NoteSignature[] = []
  const seen = new Set<string>()
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed('a line after the blank line is no signature')
    const [name, base64] = chop(line.slice(SIGNATURE_PREFIX.length), ' ')
    const bytes = fromBase64(base64)
    if (!isKeyName(name) || base64 === '' || bytes === null || bytes.length < 5)
      throw malformed(`a signature line is not "— <key name> <base64 signature>"`)
    const hash = Buffer.from(bytes).readUInt32BE(0)
    const id = `${name}+${hex8(hash)}`
    const signature = { name, hash, base64 }
    const key = known.get(id)
    // the same signature twice counts once
    if (seen.has(key ? id : line)) continue
    seen.add(key ? id : line)
    if (!key) {
      unverified.push(signature)
      continue
    }
    const bare = bytes.subarray(4)
    if (bare.length !== SIGNATURE_BYTES || !verify(null, signed, ed25519PublicKey(key.publicKey), bare))
      throw new CheckpointError('bad-signature', `the signature of ${id} does not verify`)
    signatures.push(signature)
  }
  if (signatures.length === 0) {
    const by = unverified.map((s) => `${s.name}+${hex8(s.hash)}`).join(', ')
    throw new CheckpointError('unknown-key', `no known key signed the note (it is signed by ${by})`)
  }
  return { text, signatures, unverified }
}

/** The text of a checkpoint (C2SP tlog-checkpoint): origin, size, base64 root, extension lines. */
export const checkpointBody = (c: Checkpoint): string => {
  const lines = [c.origin, String(c.size), toBase64(c.rootHash), ...c.extensions]
  const problem =
    c.origin === ''
      ? 'an empty origin'
      : !Number.isSafeInteger(c.size) || c.size < 0
        ? `a size of ${c.size}`
        : c.rootHash.length !== HASH_BYTES
          ? `a root hash of ${c.rootHash.length} bytes`
          : c.extensions.some((e) => e === '')
            ? 'an empty extension line'
            : lines.some((l) => l.includes('\n'))
              ? 'a line holding a newline'
              : lines.length > MAX_CHECKPOINT_LINES
                ? `more than ${MAX_CHECKPOINT_LINES} lines`
                : textProblem(lines.join(''))
  if (problem) throw new CheckpointError('malformed', `no checkpoint has ${problem}`)
  return `${lines.join('\n')}\n`
}

const notACheckpoint = (why: string) => new CheckpointError('malformed', `a malformed checkpoint: ${why}`)

/** Reads a checkpoint's text (a note's verified text); throws a CheckpointError 'malformed'. */
export const parseCheckpointBody = (text: string): Checkpoint => {
  const lines = text.split('\n')
  if (lines.pop() !== '') throw notACheckpoint('its text does not end with a newline')
  if (lines.length < 3) throw notACheckpoint('fewer than three lines (origin, size, root hash)')
  if (lines.length > MAX_CHECKPOINT_LINES) throw notACheckpoint(`more than ${MAX_CHECKPOINT_LINES} lines`)
  const [origin = '', size = '', root = '', ...extensions] = lines
  if (origin === '') throw notACheckpoint('an empty origin')
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw notACheckpoint(`the size ${JSON.stringify(size)} is no number`)
  if (!Number.isSafeInteger(Number(size))) throw notACheckpoint(`the size ${size} is too large`)
  const rootHash = fromBase64(root)
  if (rootHash === null || rootHash.length !== HASH_BYTES || toBase64(rootHash) !== root)
    throw notACheckpoint('the root hash is not 32 bytes in base64')
  if (extensions.some((e) => e === '')) throw notACheckpoint('an empty extension line')
  return { origin, size: Number(size), rootHash, extensions }
}

/** Opens a signed checkpoint: a note signed by one of the verifier keys, whose text is a checkpoint. */
export const openCheckpoint = (note: string | Uint8Array, verifierKeys: readonly string[]): Checkpoint =>
  parseCheckpointBody(openNote(note, verifierKeys).text)

/** A note verifier key, `<name>+<hash>+<keydata>` (Ed25519), as settings, the key list and the CLI take it. */
export const VerifierKeyText = z.string().superRefine((text, ctx) => {
  try {
    parseVerifierKey(text)
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error
    ctx.addIssue({ code: 'custom', message: error.message })
  }
})
