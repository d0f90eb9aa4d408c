import { createHash, randomBytes } from 'node:crypto'

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

const hexOf = (bytes: Uint8Array, from: number, to: number): string => {
  let out = ''
  for (let i = from; i < to; i += 1) out += HEX[bytes[i] ?? 0]
  return out
}

const format = (bytes: Uint8Array): string =>
  `${hexOf(bytes, 0, 4)}-${hexOf(bytes, 4, 6)}-${hexOf(bytes, 6, 8)}-${hexOf(bytes, 8, 10)}-${hexOf(bytes, 10, 16)}`

/** Random bytes drawn from the CSPRNG a page at a time: one system call serves hundreds of ids. */
class RandomPool {
  private page = Buffer.alloc(0)
  private offset = 0

  constructor(private readonly pageSize: number) {}

  /** Copies the next `count` random bytes, never handed out before, into `into` at `at`. */
  take(into: Uint8Array, at: number, count: number): void {
    if (this.offset + count > this.page.length) {
      this.page = randomBytes(this.pageSize)
      this.offset = 0
    }
    this.page.copy(into, at, this.offset, this.offset + count)
    this.offset += count
  }
}

const pool = new RandomPool(4096)

/** Where each id is assembled before it is formatted: ids are made one at a time, synchronously. */
const scratch = new Uint8Array(16)

/** UUIDv7 (RFC 9562): 48-bit millisecond timestamp, then 74 random bits. */
export const uuidv7 = (nowMs: number = Date.now()): string => {
  const bytes = scratch
  let ms = nowMs
  for (let i = 5; i >= 0; i -= 1) {
    bytes[i] = ms % 256
    ms = Math.floor(ms / 256)
  }
  pool.take(bytes, 6, 10)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  return format(bytes)
}

/** UUIDv8 derived from a name, so that replay derives the same id for the same decision. */
export const uuidFromName = (name: string): string => {
  const bytes = createHash('sha256').update(name, 'utf8').digest().subarray(0, 16)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  return format(bytes)
}
