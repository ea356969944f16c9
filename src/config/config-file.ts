import {readFileSync} from 'node:fs'

import {z} from 'zod'

import {configError} from '../errors.js'

/**
 * Reading and checking shien's JSON config files against their schemas (zod): one error shape
 * for all of them, naming the file, each field as a dotted path, and what it should be.
 */

/** `limits.groups.os101.vms` for the path zod reports; `(top level)` for the file itself. */
export function dottedPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.')
}

/** One issue as a person reads it: the field, and what was expected there. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const at = dottedPath(issue.path)
  switch (issue.code) {
    case 'unrecognized_keys': {
      return issue.keys.map((key) => `${dottedPath([...issue.path, key])}: not a known setting`).join('; ')
    }
    case 'invalid_type': {
      return issue.input === undefined ? `${at}: missing, expected ${issue.expected}` : `${at}: expected ${issue.expected}, got ${received(issue.input)}`
    }
    case 'invalid_value': {
      return `${at}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`
    }
    default: {
      return `${at}: ${issue.message}`
    }
  }
}

function received(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${JSON.stringify(value)}`
}

/** Checks a parsed file against its schema; a wrong type or unknown key is CONFIG_INVALID naming file and fields. */
export function checkConfig<S extends z.ZodType>(schema: S, value: unknown, file: string, suggestions: string[]): z.output<S> {
  const result = schema.safeParse(value, {reportInput: true})
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => describeIssue(issue))
  const message = problems.length === 1
    ? `${file} is not valid: ${problems[0]}.`
    : `${file} is not valid:\n  - ${problems.join('\n  - ')}`
  throw configError('CONFIG_INVALID', message, suggestions, result.error)
}

/** The file's JSON, `undefined` when it does not exist; unreadable or not JSON throws. */
export function readConfigJson(file: string, suggestions: string[]): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw configError('CONFIG_UNREADABLE', `Cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, suggestions, error)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw configError('CONFIG_INVALID', `${file} is not valid JSON (${(error as Error).message}).`, suggestions, error)
  }
}

/**
 * The same object schema with every default dropped and every field optional: what a section
 * of a file may say, where the defaults are filled in later (`documentDefaults`: the docs show
 * them, as for `push`) or never (a group's limits, which only raise the default limits).
 */
export function withoutDefaults<T extends z.ZodRawShape>(schema: z.ZodObject<T>, o: {documentDefaults: boolean}) {
  const shape: Record<string, z.ZodType> = {}
  for (const [key, field] of Object.entries(schema.shape)) {
    const inner = field instanceof z.ZodDefault || field instanceof z.ZodPrefault ? (field.unwrap() as z.ZodType) : (field as z.ZodType)
    const meta: Record<string, unknown> = {...z.globalRegistry.get(field as z.ZodType)}
    // The docs still show the default the section's reader fills in (a computed one says so in words).
    if (o.documentDefaults && field instanceof z.ZodDefault && meta.computedDefault === undefined) meta.computedDefault = field._zod.def.defaultValue
    if (!o.documentDefaults) delete meta.computedDefault
    shape[key] = Object.keys(meta).length > 0 ? inner.optional().meta(meta) : inner.optional()
  }
  return z.strictObject(shape) as unknown as z.ZodObject<{[K in keyof T]: z.ZodOptional<Unwrapped<T[K]>>}, z.core.$strict>
}

type Unwrapped<F> = F extends z.ZodDefault<infer I> ? I : F extends z.ZodPrefault<infer I> ? I : F
