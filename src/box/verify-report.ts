import {ShienError} from '../errors.js'
import type {VerifyResult} from './verify.js'

/** The error for a catalog whose boxes failed: every failing box and why, in one message. */
export function verifyFailure(result: VerifyResult): ShienError {
  const failed = result.boxes.filter((b) => b.problems.length > 0)
  const mismatch = failed.some((b) => b.checksum === 'mismatch')
  const lines = failed.map((b) => `  ${b.version} ${b.provider} (${b.url}): ${b.problems.join('; ')}`)
  return new ShienError(`${failed.length} of ${result.boxes.length} boxes in ${result.catalog} failed:\n${lines.join('\n')}`, {
    code: mismatch ? 'CHECKSUM_MISMATCH' : 'BOX_VERIFY_FAILED',
    exit: 'badInput',
    suggestions: mismatch
      ? ['Publish the version again with shien box publish --force, which rewrites the boxes and their checksums together.']
      : ['Publish the box again with shien box publish, which writes metadata.json for each provider.'],
  })
}
