/**
 * The output of an earlier stage, which the stage list guarantees has run. A missing one is a
 * stage list out of order (a bug in shien), so the error says which output and not what to try.
 */
export function need<O extends object, K extends keyof O & string>(outputs: O, key: K): NonNullable<O[K]> {
  const value = outputs[key]
  if (value === undefined || value === null) throw new Error(`Internal error: a stage needs the ${key} output before the stage that makes it has run.`)
  return value as NonNullable<O[K]>
}
