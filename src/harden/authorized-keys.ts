import {posix} from 'node:path'

import {addAuthorizedKey, removeInsecureKeys, type PublicKey} from './edits.js'
import {MAX_TEXT_BYTES, setOwnerMode, unsafe} from './guest-files.js'
import type {GuestfishSession, GuestStat} from './guestfish.js'
import type {GuestState, HardenReport} from './report.js'

type KeysGuest = Pick<GuestState, 'account' | 'homes' | 'targetHome'>

type KeysReport = Pick<HardenReport, 'insecureKeysRemoved' | 'unsafeLinksRemoved' | 'keyInstalled'>

/**
 * Cleans every account's authorized_keys(2) and installs the student's key. A symlinked or
 * hard-linked .ssh or key file is removed unread: sshd would follow it to a file harden does not
 * own (`authorized_keys -> /etc/shadow` would otherwise be rewritten, or copied to the user).
 */
export async function installStudentKey(g: GuestfishSession, guest: KeysGuest, key: PublicKey): Promise<KeysReport> {
  const report: KeysReport = {insecureKeysRemoved: [], unsafeLinksRemoved: [], keyInstalled: {file: '', added: false}}
  const isLink = (st: GuestStat) => st.kind === 'symlink' || (st.kind === 'file' && st.nlink > 1)
  for (const home of guest.homes) {
    const sshDir = posix.join(home, '.ssh')
    const dirStat = await g.stat(sshDir)
    if (dirStat && isLink(dirStat)) {
      await g.call('rm', sshDir)
      report.unsafeLinksRemoved.push(sshDir)
    }
    if (dirStat?.kind !== 'dir') continue
    for (const name of ['authorized_keys', 'authorized_keys2']) {
      const file = posix.join(sshDir, name)
      const st = await g.stat(file)
      if (st && isLink(st)) {
        await g.call('rm', file)
        report.unsafeLinksRemoved.push(file)
      } else if (st?.kind === 'file') {
        await cleanKeyFile(g, file, st, report)
      }
    }
  }
  report.keyInstalled = await addKeyForUser(g, guest, key)
  return report
}

async function cleanKeyFile(g: GuestfishSession, file: string, st: GuestStat, report: KeysReport): Promise<void> {
  if (st.size > MAX_TEXT_BYTES) throw unsafe(file, `it is ${st.size} bytes`)
  const cleaned = removeInsecureKeys((await g.readFile(file)).toString('latin1'))
  if (cleaned.removed === 0) return
  await g.writeFile(file, Buffer.from(cleaned.content, 'latin1'))
  report.insecureKeysRemoved.push({file, count: cleaned.removed})
}

/** ~/.ssh 0700 and ~/.ssh/authorized_keys 0600, owned by the account, with the key once. */
async function addKeyForUser(g: GuestfishSession, guest: KeysGuest, key: PublicKey): Promise<{file: string; added: boolean}> {
  const {uid, gid} = guest.account
  const sshDir = posix.join(guest.targetHome, '.ssh')
  const dirStat = await g.stat(sshDir)
  if (dirStat && dirStat.kind !== 'dir') await g.call('rm-rf', sshDir)
  if (dirStat?.kind !== 'dir') await g.call('mkdir', sshDir)
  await setOwnerMode(g, sshDir, uid, gid, 0o700)
  const file = posix.join(sshDir, 'authorized_keys')
  const st = await g.stat(file)
  if (st && st.kind !== 'file') await g.call('rm-rf', file)
  const current = st?.kind === 'file' ? (await g.readFile(file)).toString('latin1') : ''
  const next = addAuthorizedKey(current, {...key, line: Buffer.from(key.line, 'utf8').toString('latin1')})
  if (next.added || st?.kind !== 'file') await g.writeFile(file, Buffer.from(next.content, 'latin1'))
  await setOwnerMode(g, file, uid, gid, 0o600)
  return {file, added: next.added}
}
