import {expect} from 'vitest'

import {ShienError} from '../../src/errors.js'

/** The ShienError `fn` throws, checked to be a refusal of bad input (exit 3). */
export function refusal(fn: () => unknown): ShienError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(ShienError)
    expect((error as ShienError).exitCode).toBe(3)
    return error as ShienError
  }
  throw new Error('expected a refusal')
}

/** The ShienError `promise` rejects with, checked to be a refusal of bad input (exit 3). */
export async function rejection(promise: Promise<unknown>): Promise<ShienError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  expect((error as ShienError).exitCode).toBe(3)
  return error as ShienError
}
