import {XMLParser} from 'fast-xml-parser'

/** The SSH port forward of a defined domain, as libvirt holds it. */
export interface SshForward {
  address: string
  port: number
}

interface ParsedDomain {
  domain?: {'qemu:commandline'?: {'qemu:arg'?: {'@_value'?: unknown}[]}}
}

const HOSTFWD = /(?:^|,)hostfwd=tcp:([^:,]*):(\d{1,5})-:22(?:,|$)/

/**
 * Reads the guest SSH forward from `virsh dumpxml` output: the `hostfwd` of the qemu
 * command-line netdev the templates add. Undefined for a domain without one.
 */
export function sshForwardOf(xml: string): SshForward | undefined {
  const parser = new XMLParser({
    ignoreAttributes: false,
    processEntities: true,
    parseAttributeValue: false,
    isArray: (name) => name === 'qemu:arg',
  })
  const doc = parser.parse(xml) as ParsedDomain
  for (const arg of doc.domain?.['qemu:commandline']?.['qemu:arg'] ?? []) {
    const match = HOSTFWD.exec(String(arg['@_value'] ?? ''))
    if (match) return {address: match[1], port: Number(match[2])}
  }
  return undefined
}
