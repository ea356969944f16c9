/**
 * Box versions as Vagrant reads them: Vagrant parses every catalog version with RubyGems'
 * Gem::Version and orders them with its rules, so shien checks and sorts with the same ones.
 */

/** RubyGems' Gem::Version::VERSION_PATTERN, anchored, without the surrounding blanks it tolerates. */
const VERSION_PATTERN = /^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/
/** Versions become directory names and URL path segments; keep them reasonable. */
const MAX_LENGTH = 64

/** Why a version string is refused, or undefined when Vagrant accepts it. */
export function versionProblem(version: string): string | undefined {
  if (version.length === 0) return 'it is empty'
  if (version.length > MAX_LENGTH) return `it is longer than ${MAX_LENGTH} characters`
  if (!VERSION_PATTERN.test(version)) {
    return 'Vagrant reads versions as numbers and letters separated by dots, starting with a number (e.g. 2026.1.0 or 1.2.0-rc1)'
  }
  return undefined
}

type Segment = number | string

/** Gem::Version#canonical_segments: numbers, then letters; trailing zeros of each part dropped. */
function canonicalSegments(version: string): Segment[] {
  // RubyGems reads "1.0-rc1" as "1.0.pre.rc1".
  const segments: Segment[] = [...version.replaceAll('-', '.pre.').matchAll(/[0-9]+|[a-z]+/gi)].map((m) =>
    /^[0-9]/.test(m[0]) ? Number(m[0]) : m[0],
  )
  const firstString = segments.findIndex((s) => typeof s === 'string')
  const numeric = firstString === -1 ? segments : segments.slice(0, firstString)
  const rest = firstString === -1 ? [] : segments.slice(firstString)
  return [...dropTrailingZeros(numeric), ...dropTrailingZeros(rest)]
}

function dropTrailingZeros(segments: Segment[]): Segment[] {
  let end = segments.length
  while (end > 0 && segments[end - 1] === 0) end--
  return segments.slice(0, end)
}

/** Gem::Version#<=>: negative when `a` is older than `b`, 0 when Vagrant takes them as equal. */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0
  const left = canonicalSegments(a)
  const right = canonicalSegments(b)
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = left[i] ?? 0
    const r = right[i] ?? 0
    if (l === r) continue
    // A letter makes a prerelease: 1.0.a is older than 1.0.0 and 1.0.1.
    if (typeof l === 'string' && typeof r === 'number') return -1
    if (typeof l === 'number' && typeof r === 'string') return 1
    return l < r ? -1 : 1
  }
  return 0
}
