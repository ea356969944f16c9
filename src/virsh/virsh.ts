import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'
import {runAttached, runTool, type ToolResult} from '../process/run.js'

/** Domain states as `virsh domstate` prints them. */
export type DomainState =
  | 'running'
  | 'idle'
  | 'paused'
  | 'in shutdown'
  | 'shut off'
  | 'crashed'
  | 'pmsuspended'
  | 'unknown'

const STATES: readonly DomainState[] = ['running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended']

export interface HypervisorCallOptions {
  signal: AbortSignal
}

export interface DumpOptions {
  inactive?: boolean
  withSecrets?: boolean
  /** As a migration takes it (`--migratable`): what libvirt filled in at start left out, so the destination's check of the XML against the running domain holds. */
  migratable?: boolean
}

/**
 * The libvirt operations ie-virsh needs, on domains it has already authorised.
 * Every name passed in is `<account>-<slot>`; callers check ownership before calling.
 */
export interface Hypervisor {
  /** Names of all domains, running or not. */
  listNames(o: HypervisorCallOptions): Promise<string[]>
  /** Names of the active domains (running, paused, ...): what holds ports and consoles. */
  listActive(o: HypervisorCallOptions): Promise<string[]>
  /** The domain's state, or undefined when no domain has that name. */
  state(name: string, o: HypervisorCallOptions): Promise<DomainState | undefined>
  /** Defines a persistent domain from XML; resolves with the name libvirt reports. */
  define(xml: string, o: HypervisorCallOptions): Promise<{domain: string}>
  /** Boots the domain; `paused` leaves its CPUs stopped before the first instruction. */
  start(name: string, o: HypervisorCallOptions & {paused?: boolean}): Promise<void>
  /** Asks the guest to shut down (the ACPI power button); returns at once, the guest takes its time. */
  shutdown(name: string, o: HypervisorCallOptions): Promise<void>
  /** Powers the domain off at once, like pulling the plug. */
  destroy(name: string, o: HypervisorCallOptions): Promise<void>
  undefine(name: string, o: HypervisorCallOptions): Promise<void>
  /**
   * The domain's XML. Without `withSecrets` libvirt leaves passwords out (what students see);
   * with it the XML is complete, for redefining the domain. `inactive` gives the persistent
   * definition rather than the running one.
   */
  dumpXml(name: string, o: HypervisorCallOptions & DumpOptions): Promise<string>
  /** Attaches `virsh console` to this process's terminal; resolves with virsh's exit code. */
  console(name: string, o: HypervisorCallOptions): Promise<number>
  /** The host's memory as libvirt reports it (`virsh nodeinfo`), in KiB. */
  nodeMemoryKiB(o: HypervisorCallOptions): Promise<number>
}

/** Hypervisor backed by the `virsh` client on the blade's libvirt URI. */
export class VirshHypervisor implements Hypervisor {
  constructor(private readonly uri: string) {}

  async listNames(o: HypervisorCallOptions): Promise<string[]> {
    const r = await this.ok(['list', '--all', '--name'], 'list the domains', o)
    return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0)
  }

  async listActive(o: HypervisorCallOptions): Promise<string[]> {
    const r = await this.ok(['list', '--name'], 'list the running domains', o)
    return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0)
  }

  async state(name: string, o: HypervisorCallOptions): Promise<DomainState | undefined> {
    const r = await this.virsh(['domstate', name], o)
    if (r.exitCode !== 0 && isNoDomain(r)) return undefined
    if (r.exitCode !== 0) throw virshFailed(`read the state of ${name}`, r)
    const state = r.stdout.trim() as DomainState
    return STATES.includes(state) ? state : 'unknown'
  }

  async define(xml: string, o: HypervisorCallOptions): Promise<{domain: string}> {
    // The XML goes through a file only root can read: mkdtemp makes a 0700 folder with an
    // unguessable name, and /tmp is fixed rather than taken from TMPDIR (the caller's env).
    const dir = await mkdtemp('/tmp/ie-virsh-')
    try {
      const file = join(dir, 'domain.xml')
      await writeFile(file, xml, {mode: 0o600, flag: 'wx'})
      const r = await this.ok(['define', file], 'define the domain', o)
      const match = /Domain '([^']+)' defined/.exec(r.stdout)
      if (!match) throw virshFailed('define the domain', r)
      return {domain: match[1]}
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  }

  async start(name: string, o: HypervisorCallOptions & {paused?: boolean}): Promise<void> {
    await this.ok(['start', ...(o.paused ? ['--paused'] : []), name], `start ${name}`, o)
  }

  async shutdown(name: string, o: HypervisorCallOptions): Promise<void> {
    await this.ok(['shutdown', '--mode', 'acpi', name], `shut ${name} down`, o)
  }

  async destroy(name: string, o: HypervisorCallOptions): Promise<void> {
    await this.ok(['destroy', name], `stop ${name}`, o)
  }

  async undefine(name: string, o: HypervisorCallOptions): Promise<void> {
    // libvirt refuses to undefine a UEFI domain unless told what to do with its variable store,
    // and would unlink it as root: it stays, and goes as the owner with the image (removeImage).
    await this.ok(['undefine', '--keep-nvram', name], `undefine ${name}`, o)
  }

  async dumpXml(name: string, o: HypervisorCallOptions & DumpOptions): Promise<string> {
    const flags = [...(o.inactive ? ['--inactive'] : []), ...(o.withSecrets ? ['--security-info'] : []), ...(o.migratable ? ['--migratable'] : [])]
    return (await this.ok(['dumpxml', ...flags, name], `read the XML of ${name}`, o)).stdout
  }

  console(name: string, o: HypervisorCallOptions): Promise<number> {
    return runAttached('virsh', ['-c', this.uri, 'console', name], {signal: o.signal})
  }

  async nodeMemoryKiB(o: HypervisorCallOptions): Promise<number> {
    const r = await this.ok(['nodeinfo'], "read the host's memory", o)
    const m = /^Memory size:\s+(\d+)\s+KiB$/m.exec(r.stdout)
    if (m === null) throw virshFailed("read the host's memory (no \"Memory size\" in virsh nodeinfo)", r)
    return Number(m[1])
  }

  // virsh takes a domain by name, id or UUID; ours are `<account>-NN`, which are never all
  // digits nor 32 hex digits, so they can only match by name.
  private virsh(args: string[], o: HypervisorCallOptions): Promise<ToolResult> {
    return runTool('virsh', ['-c', this.uri, ...args], {signal: o.signal, timeoutMs: 120_000})
  }

  private async ok(args: string[], what: string, o: HypervisorCallOptions): Promise<ToolResult> {
    const r = await this.virsh(args, o)
    if (r.exitCode !== 0) throw virshFailed(what, r)
    return r
  }
}

function isNoDomain(r: ToolResult): boolean {
  return /failed to get domain|Domain not found/i.test(r.stderr)
}

function virshFailed(what: string, r: ToolResult): ShienError {
  // virsh prints a generic line ("Failed to start domain") and then the reason: keep both.
  const lines = r.stderr.split('\n').map((l) => l.trim().replace(/^error:\s*/, '')).filter((l) => l.length > 0)
  const reason = r.timedOut ? 'virsh timed out' : lines.join(': ') || 'no error output'
  return new ShienError(`libvirt could not ${what}: ${reason}.`, {
    code: 'VIRSH_FAILED',
    exit: 'remote',
    suggestions: ['Try again; if it keeps failing, send this message to an admin.'],
  })
}
