/**
 * Host keys across images: two VMs with the same host key can impersonate each other to anyone
 * who trusted one of them, and a published box's key is known to every student who has the box.
 */
import type {BoxReport, Finding, ImageReport} from './types.js'

const label = (r: ImageReport) => (r.account ? `${r.account}/${r.slot ?? r.path}` : r.path)

export function hostKeyFindings(images: ImageReport[], boxes: BoxReport[]): Finding[] {
  const owners = new Map<string, ImageReport[]>()
  for (const image of images) {
    for (const fp of new Set(image.hostKeys.map((k) => k.fingerprint))) owners.set(fp, [...(owners.get(fp) ?? []), image])
  }
  const boxOf = new Map<string, string[]>()
  for (const box of boxes) {
    for (const fp of new Set(box.hostKeys.map((k) => k.fingerprint))) boxOf.set(fp, [...(boxOf.get(fp) ?? []), box.path])
  }
  return images.flatMap((image) => {
    const ref = {image: image.path, account: image.account, slot: image.slot}
    const fps = [...new Set(image.hostKeys.map((k) => k.fingerprint))]
    const shared = fps.filter((fp) => (owners.get(fp) ?? []).length > 1)
    const others = [...new Set(shared.flatMap((fp) => owners.get(fp)!.filter((o) => o !== image).map(label)))].sort()
    const fromBox = fps.filter((fp) => boxOf.has(fp))
    const out: Finding[] = []
    if (shared.length > 0) {
      out.push({
        ...ref, code: 'shared-host-key', severity: 'high', file: '/etc/ssh',
        message: `The SSH host keys of this image are also in ${others.join(', ')}: one VM can impersonate the other.`,
        fix: 'Give each VM its own host keys: push it again with shien push, or run "ssh-keygen -A" after deleting /etc/ssh/ssh_host_* in the VM.',
        detail: {fingerprints: shared, sharedWith: others},
      })
    }
    if (fromBox.length > 0) {
      const boxesHit = [...new Set(fromBox.flatMap((fp) => boxOf.get(fp)!))].sort()
      out.push({
        ...ref, code: 'box-host-key', severity: 'high', file: '/etc/ssh',
        message: `The SSH host keys of this image are those of the published box ${boxesHit.join(', ')}: everyone with the box has them.`,
        fix: 'Give the VM its own host keys: push it again with shien push, or run "ssh-keygen -A" after deleting /etc/ssh/ssh_host_* in the VM.',
        detail: {fingerprints: fromBox, boxes: boxesHit},
      })
    }
    return out
  })
}
