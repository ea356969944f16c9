/**
 * Running domains and how to reach them, from this blade's libvirt and nothing else: forwarded
 * host ports from the domain XML (the `hostfwd` of the user-mode network ie-virsh's templates
 * set up), and interface addresses libvirt knows (DHCP leases, the host's ARP table) for
 * bridged or NAT networks. The audit never takes an address from anywhere else.
 */
import {XMLParser} from 'fast-xml-parser'

import {ShienError} from '../../errors.js'
import {firstErrorLine, runTool} from '../../process/run.js'
import type {DomainReport} from '../types.js'

export type Forward = DomainReport['reachedVia']['forwards'][number]

/** Where one guest port is reached: through a forward, or directly at an address. */
export interface Endpoint {
  host: string
  port: number
  via: 'forward' | 'address'
}

export interface LiveDomain {
  name: string
  account?: string
  slot?: string
  reachedVia: DomainReport['reachedVia']
}

/** The libvirt queries the live audit makes; tests replace it with a fake. */
export interface LiveHypervisor {
  listRunning(o: {signal?: AbortSignal}): Promise<string[]>
  dumpXml(name: string, o: {signal?: AbortSignal}): Promise<string>
  /** Interface addresses libvirt reports; [] when it knows none. */
  addresses(name: string, o: {signal?: AbortSignal}): Promise<string[]>
}

export class VirshLive implements LiveHypervisor {
  constructor(private readonly uri: string) {}

  async listRunning(o: {signal?: AbortSignal}): Promise<string[]> {
    const r = await runTool('virsh', ['-c', this.uri, 'list', '--name', '--state-running'], {signal: o.signal, timeoutMs: 60_000})
    if (r.exitCode !== 0) {
      throw new ShienError(`libvirt (${this.uri}) could not list the running domains: ${firstErrorLine(r.stderr)}.`, {
        code: 'VIRSH_FAILED', exit: 'remote', suggestions: ['Check that libvirtd runs on this blade, and run the audit as root.'],
      })
    }
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)
  }

  async dumpXml(name: string, o: {signal?: AbortSignal}): Promise<string> {
    const r = await runTool('virsh', ['-c', this.uri, 'dumpxml', '--', name], {signal: o.signal, timeoutMs: 60_000})
    // The domain may have stopped since the listing: no XML, so no endpoints.
    return r.exitCode === 0 ? r.stdout : ''
  }

  async addresses(name: string, o: {signal?: AbortSignal}): Promise<string[]> {
    const out = new Set<string>()
    for (const source of ['lease', 'arp']) {
      const r = await runTool('virsh', ['-c', this.uri, 'domifaddr', '--source', source, '--', name], {signal: o.signal, timeoutMs: 30_000})
      if (r.exitCode === 0) parseDomifaddr(r.stdout).forEach((a) => out.add(a))
    }
    return [...out]
  }
}

/** Addresses from `virsh domifaddr` output; link-local IPv6 is left out (it needs a zone). */
export function parseDomifaddr(text: string): string[] {
  return text.split('\n').flatMap((line) => {
    const m = /\s(ipv4|ipv6)\s+(\S+?)\/\d+\s*$/.exec(line)
    return m && !m[2].toLowerCase().startsWith('fe80:') ? [m[2]] : []
  })
}

const HOSTFWD = /hostfwd=tcp:([^:,]*):(\d{1,5})-[^:,]*:(\d{1,5})/g

/** Every TCP `hostfwd` of the qemu command-line netdevs in a domain's XML. */
export function forwardsOf(xml: string): Forward[] {
  if (xml.trim() === '') return []
  const parser = new XMLParser({ignoreAttributes: false, processEntities: true, parseAttributeValue: false, isArray: (name) => name === 'qemu:arg'})
  const doc = parser.parse(xml) as {domain?: {'qemu:commandline'?: {'qemu:arg'?: {'@_value'?: unknown}[]}}}
  const out: Forward[] = []
  for (const arg of doc.domain?.['qemu:commandline']?.['qemu:arg'] ?? []) {
    for (const m of String(arg['@_value'] ?? '').matchAll(HOSTFWD)) {
      // A forward bound to every address is reachable on loopback too.
      const host = m[1] === '' || m[1] === '0.0.0.0' ? '127.0.0.1' : m[1] === '::' ? '::1' : m[1]
      out.push({guestPort: Number(m[3]), host, port: Number(m[2])})
    }
  }
  return out
}

const SHIEN_DOMAIN = /^([a-z_][a-z0-9_-]{0,31})-(\d\d)$/

export async function runningDomains(hv: LiveHypervisor, o: {signal?: AbortSignal}): Promise<LiveDomain[]> {
  const out: LiveDomain[] = []
  for (const name of (await hv.listRunning(o)).sort()) {
    const m = SHIEN_DOMAIN.exec(name)
    const forwards = forwardsOf(await hv.dumpXml(name, o))
    const addresses = await hv.addresses(name, o)
    out.push({name, ...(m ? {account: m[1], slot: m[2]} : {}), reachedVia: {forwards, addresses}})
  }
  return out
}

/** Where to connect for a guest port: a forward of that port, or any address on that port. */
export function endpointFor(domain: LiveDomain, guestPort: number): Endpoint | undefined {
  const forward = domain.reachedVia.forwards.find((f) => f.guestPort === guestPort)
  if (forward) return {host: forward.host, port: forward.port, via: 'forward'}
  const address = domain.reachedVia.addresses[0]
  return address === undefined ? undefined : {host: address, port: guestPort, via: 'address'}
}
