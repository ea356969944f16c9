import type {Role} from '../directory/directory.js'
import type {Limits} from '../config/blade-config.js'
import type {VirshContext} from './context.js'
import {sshForwardOf} from './domain-xml.js'
import {gdbStubOf} from './gdb-stub.js'
import {slotOfDomain} from './limits.js'
import {INACTIVE} from './own-domain.js'
import {sshFields, type SshFields} from './ssh-info.js'
import {claimListed} from './slot-claims.js'
import type {DomainState} from './virsh.js'
import {renderTable} from '../text-table.js'

/** One of the owner's VMs; the SSH fields are absent when its domain has no forward. */
export interface ListedDomain extends Partial<SshFields> {
  slot: string
  name: string
  state: DomainState
  /** The gdb stub's socket on the blade, while the VM runs under `debug`. */
  debugSocket?: string
  /** The blade the slot's record names when it is not this one (docs/cluster.md): an admin's matter. */
  recordedOn?: string
}

export interface ListResult {
  account: string
  /** The caller's role (the caller may be an admin listing another account). */
  role: Role
  /** The owner's limits; slots run from 01 to limits.vms. */
  limits: Limits
  domains: ListedDomain[]
}

/**
 * `ie-virsh list`: the owner's domains, stopped ones included (the thesis made that the
 * default because students stop their VMs often). Only `<account>-NN` names are shown.
 */
export async function listDomains(ctx: VirshContext): Promise<ListResult> {
  const o = {signal: ctx.signal}
  const account = ctx.owner.account
  const domains: ListedDomain[] = []
  for (const name of await ctx.hypervisor.listNames(o)) {
    const slot = slotOfDomain(account, name)
    if (slot === undefined) continue
    // The domain can vanish between the listing and these calls (another blade undefined it).
    const state = await ctx.hypervisor.state(name, o)
    if (state === undefined) continue
    const xml = await ctx.hypervisor.dumpXml(name, o)
    const forward = sshForwardOf(xml)
    const stub = INACTIVE.includes(state) ? undefined : gdbStubOf(xml)
    domains.push({slot, name, state, ...sshFields(ctx.sshHost, forward?.port), ...(stub ? {debugSocket: stub.socket} : {})})
  }
  domains.sort((a, b) => a.slot.localeCompare(b.slot))
  const elsewhere = await claimListed(ctx, domains)
  for (const d of domains) {
    const blade = elsewhere.get(d.slot)
    if (blade !== undefined) d.recordedOn = blade
  }
  return {account, role: ctx.role, limits: ctx.limits, domains}
}

export function describeList(r: ListResult): string {
  if (r.domains.length === 0) return `No VMs defined for ${r.account}. Define one with: sudo ie-virsh define 01`
  return renderTable(
    ['SLOT', 'NAME', 'STATE', 'DEBUG', 'SSH'],
    r.domains.map((d) => [d.slot, d.name, d.recordedOn === undefined ? d.state : `${d.state} (recorded on ${d.recordedOn})`, d.debugSocket === undefined ? '-' : d.debugSocket, d.ssh ?? '-']),
  )
}

