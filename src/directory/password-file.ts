import {constants} from 'node:fs'
import {open} from 'node:fs/promises'

import {ShienError} from '../errors.js'

/**
 * Reads the LDAP bind password from its file. The file must be owned by root and closed to
 * group and others: /etc/shien/config.json is readable by every student, the password file is
 * not, and a file someone else could write would let them point ie-virsh at their own server.
 * Only the first line counts, so an editor's trailing newline does no harm.
 */
export async function readPasswordFile(path: string): Promise<string> {
  let handle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (error) {
    throw passwordFileError(`Cannot read the LDAP password file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}).`, error)
  }
  try {
    const info = await handle.stat()
    if (!info.isFile() || info.uid !== 0 || (info.mode & 0o077) !== 0) {
      throw passwordFileError(`The LDAP password file ${path} must be a file owned by root with mode 0600 or 0400.`)
    }
    const password = (await handle.readFile('utf8')).split('\n')[0]
    if (password.length === 0) throw passwordFileError(`The LDAP password file ${path} is empty.`)
    return password
  } finally {
    await handle.close()
  }
}

function passwordFileError(message: string, cause?: unknown): ShienError {
  return new ShienError(message, {
    code: 'CONFIG_INVALID',
    cause,
    suggestions: ['Ask an admin to fix ldap.bindPasswordFile (see docs/ie-virsh.md).'],
  })
}
