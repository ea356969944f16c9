import {versionProblem} from '../box/catalog-version.js'
import {CATALOG_BOX_PATTERN} from '../names.js'
import {readBoxMetas} from './vagrant-box-meta.js'

/**
 * The course base box a push may be a delta against, decided before anything runs:
 * `--full` sends the whole box; `--base` names the base; else `.shien.json`'s `base`; else,
 * when shien packages the project's VM, the box Vagrant made it from (box_meta).
 */
export type BaseChoice =
  | {kind: 'base'; box: string; version: string; from: '--base' | '.shien.json' | 'box_meta'}
  /** No base applies; `reason` says why in the words of "sending the whole box: <reason>". */
  | {kind: 'none'; reason: string}
  /** `--full`: the whole box, without asking the blade. */
  | {kind: 'full'}

export interface BaseInputs {
  base?: string
  full?: boolean
  /** `.shien.json`'s `base` (anything: it is checked here). */
  configBase?: unknown
  /** True when shien runs `vagrant package` here, so Vagrant's record is about this box. */
  packaging: boolean
  projectDir: string
  env: NodeJS.ProcessEnv
}

/** `ORG/NAME@VERSION` split, or a sentence saying what is wrong with it. */
export function parseBaseRef(ref: string): {box: string; version: string} | string {
  const at = ref.lastIndexOf('@')
  if (at < 0) return `"${ref}" is not ORG/NAME@VERSION (e.g. os101/debian12@2026.1.0)`
  const box = ref.slice(0, at)
  const version = ref.slice(at + 1)
  if (!CATALOG_BOX_PATTERN.test(box)) {
    return `"${box}" is not a catalog box name: ORG/NAME in lower-case letters, digits, ".", "_" and "-" (e.g. os101/debian12)`
  }
  const problem = versionProblem(version)
  if (problem) return `the version "${version}" of ${box} is not one Vagrant reads: ${problem}`
  return {box, version}
}

/**
 * Decides the base; a malformed `--base` or `.shien.json` base, or both `--full` and `--base`,
 * go to `problems` (a usage error the plan reports with the others).
 */
export function chooseBase(input: BaseInputs, problems: string[]): BaseChoice {
  if (input.full && input.base !== undefined) problems.push('--full and --base contradict each other: give one of them.')
  if (input.full) return {kind: 'full'}
  if (input.base !== undefined) return named(input.base, '--base', problems)
  if (input.configBase !== undefined) {
    if (typeof input.configBase !== 'string') {
      problems.push('The "base" of .shien.json is not a string such as "os101/debian12@2026.1.0".')
      return {kind: 'full'}
    }
    return named(input.configBase, '.shien.json', problems)
  }
  if (!input.packaging) return {kind: 'none', reason: 'no base box named for this box file (--base ORG/NAME@VERSION names one)'}
  return fromVagrant(input.projectDir, input.env)
}

function named(ref: string, from: '--base' | '.shien.json', problems: string[]): BaseChoice {
  const parsed = parseBaseRef(ref)
  if (typeof parsed === 'string') {
    problems.push(`The base in ${from === '--base' ? '--base' : '.shien.json'}: ${parsed}.`)
    return {kind: 'full'}
  }
  return {kind: 'base', ...parsed, from}
}

/** The box Vagrant recorded for the project's machine; Vagrant's file is read, never refused. */
function fromVagrant(projectDir: string, env: NodeJS.ProcessEnv): BaseChoice {
  const readings = readBoxMetas(projectDir, env)
  if (readings.length === 0) return {kind: 'none', reason: 'Vagrant has no record of the box this VM was made from (no .vagrant/machines/*/*/box_meta)'}
  const bad = readings.find((r) => !r.ok)
  if (bad && !bad.ok) return {kind: 'none', reason: `${bad.file} cannot be read: ${bad.problem}`}
  const metas = readings.flatMap((r) => (r.ok ? [r.meta] : []))
  const distinct = new Set(metas.map((m) => `${m.name}@${m.version}`))
  if (distinct.size > 1) {
    return {kind: 'none', reason: `the project's machines come from different boxes (${[...distinct].join(', ')}); name one with --base`}
  }
  const {name, version} = metas[0]
  if (!CATALOG_BOX_PATTERN.test(name)) return {kind: 'none', reason: `the project's box "${name}" is not a catalog box (ORG/NAME)`}
  // Vagrant gives version 0 to a box added from a file, without a catalog.
  if (version === '0' || versionProblem(version)) return {kind: 'none', reason: `the project's box ${name} has no catalog version (it was added from a file)`}
  return {kind: 'base', box: name, version, from: 'box_meta'}
}
