// A small element builder: real elements with attributes, listeners and children, no framework.
export type Child = Node | string | number | null | undefined | false | Child[]
type Props = Record<string, unknown>

const append = (parent: Node, child: Child): void => {
  if (child === null || child === undefined || child === false) return
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c)
    return
  }
  parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)))
}

export const h = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2).toLowerCase(), value as EventListener)
    } else if (value === true) {
      element.setAttribute(key, '')
    } else {
      element.setAttribute(key, String(value))
    }
  }
  append(element, children)
  return element
}

export const replace = (parent: Element, ...children: Child[]): void => {
  parent.replaceChildren()
  append(parent, children)
}

/** A table with a caption, a header row and one row per item; numbers are right-aligned. */
export const table = (
  caption: string,
  headers: readonly string[],
  rows: readonly Child[][],
  props: Props = {},
): HTMLTableElement =>
  h(
    'table',
    props,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((name) => h('th', { scope: 'col' }, name)))),
    h(
      'tbody',
      {},
      rows.length === 0
        ? h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, 'none'))
        : rows.map((cells) =>
            h(
              'tr',
              {},
              cells.map((cell) => h('td', typeof cell === 'number' ? { class: 'num' } : {}, cell)),
            ),
          ),
    ),
  )

/** A figure and its name, for the cards above a page. */
export const stat = (label: string, value: Child, key: string, note?: string): HTMLElement =>
  h(
    'div',
    { class: 'stat' },
    h('dt', {}, label),
    h('dd', { 'data-metric': key }, value),
    note ? h('dd', { class: 'note' }, note) : null,
  )

export const link = (href: string, text: Child): HTMLAnchorElement => h('a', { href }, text)

/** A titled section of term and value pairs; a row's third item holds the attributes of its value. */
export const pairs = (
  id: string,
  title: string,
  rows: ReadonlyArray<readonly [string, Child, Props?]>,
): HTMLElement =>
  h(
    'section',
    { 'aria-labelledby': id },
    h('h2', { id }, title),
    h(
      'dl',
      { class: 'pairs' },
      rows.map(([term, value, props]) => [h('dt', {}, term), h('dd', props ?? {}, value)]),
    ),
  )

export const seconds = (value: number | null | undefined): string =>
  value === null || value === undefined
    ? '—'
    : value < 120
      ? `${Number(value.toFixed(3))} s`
      : value < 7200
        ? `${(value / 60).toFixed(1)} min`
        : `${(value / 3600).toFixed(1)} h`

export const age = (totalSeconds: number): string => {
  if (totalSeconds < 60) return `${totalSeconds} s`
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)} min`
  if (totalSeconds < 86_400)
    return `${Math.floor(totalSeconds / 3600)} h ${Math.floor((totalSeconds % 3600) / 60)} min`
  return `${Math.floor(totalSeconds / 86_400)} d ${Math.floor((totalSeconds % 86_400) / 3600)} h`
}

export const time = (iso: string | null | undefined): Child =>
  iso ? h('time', { datetime: iso, title: iso }, iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')) : '—'

export const percent = (rate: number | null | undefined): string =>
  rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)} %`

/** Entries of a count map, the largest first. */
export const byCount = (counts: Record<string, number>): Array<[string, number]> =>
  Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))

export const errorBox = (error: unknown): HTMLElement =>
  h('p', { class: 'error', role: 'alert' }, error instanceof Error ? error.message : String(error))
