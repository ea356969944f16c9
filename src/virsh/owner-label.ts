import {ShienError} from '../errors.js'
import {addAcl} from '../privileged/acl.js'
import type {RunAs} from '../process/run.js'
import {openExact} from '../privileged/safe-open.js'

/**
 * A student's VM runs as that student: the domain's qemu gets the owner's uid and gid through a
 * static DAC label, so whatever the image names (a backing file, an external data file, a file
 * swapped in after ie-virsh checked it) qemu opens with the owner's rights only, and no shared
 * qemu user holds rights on every student's images.
 *
 * relabel='yes' lets libvirt hand the domain's own runtime files (its folder under libvirt's
 * state dir, the console pty) to that uid; every disk and backing file keeps its owner through
 * its own `<seclabel model='dac' relabel='no'/>` (template.ts), which libvirt accepts only
 * when the domain relabels.
 */
export function ownerLabelXml(owner: RunAs): string {
  return `<seclabel type='static' model='dac' relabel='yes'><label>+${owner.uid}:+${owner.gid}</label></seclabel>`
}

// A domain-level label sits after <devices>, where libvirt writes it and where
// withOwnerLabel puts it; disk labels are inside <devices>.
const LABEL = /<seclabel\b[^>]*?(?:\/>|>[\s\S]*?<\/seclabel>)\s*/g

/** The domain XML split where its domain-level labels can start (after `</devices>`). */
function tail(xml: string): {head: string; rest: string} {
  const end = Math.max(0, xml.lastIndexOf('</devices>'))
  return {head: xml.slice(0, end), rest: xml.slice(end)}
}

/** True when the domain runs as `owner` and has no other domain-level label. */
export function hasOwnerLabel(xml: string, owner: RunAs): boolean {
  const labels = tail(xml).rest.match(LABEL) ?? []
  if (labels.length !== 1) return false
  const label = labels[0]
  return (
    /\btype=['"]static['"]/.test(label) &&
    /\bmodel=['"]dac['"]/.test(label) &&
    /\brelabel=['"]yes['"]/.test(label) &&
    label.includes(`<label>+${owner.uid}:+${owner.gid}</label>`)
  )
}

/** The domain XML with every domain-level label replaced by the owner's. */
export function withOwnerLabel(xml: string, owner: RunAs): string {
  const {head, rest} = tail(xml)
  const stripped = rest.replace(LABEL, '')
  const close = stripped.lastIndexOf('</domain>')
  if (close < 0) throw new ShienError('The domain XML has no </domain>.', {code: 'TEMPLATE_INVALID'})
  return `${head}${stripped.slice(0, close)}  ${ownerLabelXml(owner)}\n${stripped.slice(close)}`
}

/**
 * Lets the owner's qemu through libvirt's state folder (/var/lib/libvirt/qemu, where libvirt
 * puts each running domain's own folder): traverse only, by an ACL entry for the uid. The
 * folder is root's and libvirt's, not a student's, so opening it as root is safe; setfacl gets
 * the descriptor, not the path.
 */
export async function admitToQemuState(dir: string, owner: RunAs, o: {signal: AbortSignal}): Promise<void> {
  const opened = await openExact(dir, {code: 'QEMU_STATE', directory: true})
  try {
    if (opened.stat.uid === owner.uid) return
    await addAcl(opened, [`user:${owner.uid}:--x`], o)
  } finally {
    await opened.handle.close()
  }
}
