// The public API, called with the signed-in user's own token: the console has no other source of data.
import { storedToken } from './session.js'

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message)
  }
}

/** Called when the service refuses the token (401): the console signs out. */
let onUnauthenticated: (message: string) => void = () => {}
export const whenUnauthenticated = (handler: (message: string) => void): void => {
  onUnauthenticated = handler
}

export const authorization = (): Record<string, string> => {
  const token = storedToken()
  return token ? { authorization: `Bearer ${token}` } : {}
}

const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const headers: Record<string, string> = { accept: 'application/json', ...authorization() }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    // a text answer (a signed checkpoint) stays text
  }
  if (!response.ok) {
    const message =
      parsed !== null && typeof parsed === 'object' && 'message' in parsed
        ? String((parsed as { message: unknown }).message)
        : `${response.status} ${response.statusText}`
    if (response.status === 401) onUnauthenticated(message)
    throw new ApiFailure(response.status, `${method} ${path}: ${response.status}: ${message}`, parsed)
  }
  return parsed as T
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path)
export const post = <T>(path: string, body: unknown): Promise<T> => call<T>('POST', path, body)

/** Every item of a paged list (`next` cursor), up to `max` items. */
export const allPages = async <T, K extends string>(
  path: string,
  key: K,
  max = 5000,
): Promise<{ items: T[]; asOf: number }> => {
  const items: T[] = []
  let after: string | null = null
  let asOf = 0
  do {
    const separator = path.includes('?') ? '&' : '?'
    const page: Record<K, T[]> & { next: string | null; asOf: number } = await get(
      `${path}${separator}limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}`,
    )
    items.push(...page[key])
    after = page.next
    asOf = page.asOf
  } while (after !== null && items.length < max)
  return { items, asOf }
}
