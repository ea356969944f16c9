import Table from 'cli-table3'

/**
 * The plain tables shien prints for people (vm list, audit, admin pushes, config list): a
 * header row, columns two spaces apart, no borders, no trailing spaces, laid out by cli-table3.
 * With `width`, the columns named in `wrap` (free text: a finding, how to fix it) are wrapped at
 * word boundaries so the table fits; the others keep their full width.
 */
export interface TableOptions {
  /** The widest a line may be (e.g. the terminal's columns); no limit when absent. */
  width?: number
  /** Indexes of the columns that may wrap when the table is wider than `width`. */
  wrap?: readonly number[]
}

const GAP = 2
const NO_BORDER = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' '.repeat(GAP),
}

export function renderTable(head: readonly string[], rows: readonly (readonly string[])[], o: TableOptions = {}): string {
  const natural = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const colWidths = fitWidths(natural, o)
  const table = new Table({
    head: [...head],
    chars: NO_BORDER,
    style: {head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true},
    ...(colWidths ? {colWidths, wordWrap: true, wrapOnWordBoundary: true} : {}),
  })
  table.push(...rows.map((r) => [...r]))
  return table.toString().split('\n').map((line) => line.trimEnd()).join('\n')
}

/** Widths that fit `width` by narrowing the wrapping columns in proportion; undefined when it fits as it is. */
function fitWidths(natural: number[], o: TableOptions): number[] | undefined {
  const total = natural.reduce((a, b) => a + b, 0) + GAP * (natural.length - 1)
  const wrap = (o.wrap ?? []).filter((i) => i < natural.length)
  if (o.width === undefined || total <= o.width || wrap.length === 0) return undefined
  const fixed = natural.reduce((sum, w, i) => (wrap.includes(i) ? sum : sum + w), 0) + GAP * (natural.length - 1)
  const free = Math.max(o.width - fixed, wrap.length * 12)
  const wanted = wrap.reduce((sum, i) => sum + natural[i], 0)
  return natural.map((w, i) => (wrap.includes(i) ? Math.max(12, Math.floor((w / wanted) * free)) : w))
}
