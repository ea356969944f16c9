import {badInput, ShienError} from '../errors.js'
import type {GuestfishSession, GuestStat} from './guestfish.js'

/** The most harden reads of a text file in the guest (passwd, shadow, sshd_config, keys). */
export const MAX_TEXT_BYTES = 1024 * 1024

export const unsafe = (path: string, why: string) =>
  new ShienError(`Refusing to edit ${path} in the image: ${why}.`, {code: 'HARDEN_UNSAFE_FILE', exit: 'badInput'})

export interface TextFile {
  stat: GuestStat
  content: string
}

const MISSING_HINTS: Record<string, string> = {
  '/etc/ssh/sshd_config': 'Use a box with openssh-server installed (Vagrant needs it too)',
}

/** A regular text file of the guest, refused if it is a link, a device or too big. */
export async function readRegular(g: GuestfishSession, path: string): Promise<TextFile> {
  const st = await g.stat(path)
  if (!st) throw badInput('HARDEN_MISSING_FILE', `${path} is missing in the image.`, [MISSING_HINTS[path] ?? 'Check that the box is a complete Linux system'])
  if (st.kind !== 'file') throw unsafe(path, `it is a ${st.kind}, not a regular file`)
  if (st.size > MAX_TEXT_BYTES) throw unsafe(path, `it is ${st.size} bytes`)
  return {stat: st, content: (await g.readFile(path)).toString('latin1')}
}

/** Writes a file keeping mode, owner and labels; a hard link is broken first so its twin is not edited. */
export async function rewrite(g: GuestfishSession, path: string, st: GuestStat, content: string): Promise<void> {
  if (st.nlink > 1) await g.call('rm', path)
  await g.writeFile(path, Buffer.from(content, 'latin1'))
  if (st.nlink > 1) await setOwnerMode(g, path, st.uid, st.gid, st.mode)
}

/** Both commands go out together; guestfish runs them in order. */
export async function setOwnerMode(g: GuestfishSession, path: string, uid: number, gid: number, mode: number): Promise<void> {
  await Promise.all([g.call('chown', String(uid), String(gid), path), g.call('chmod', `0${mode.toString(8)}`, path)])
}
