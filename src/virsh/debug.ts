import {constants} from 'node:fs'
import {chmod, chown, mkdir, open} from 'node:fs/promises'
import {join} from 'node:path'

import {ShienError} from '../errors.js'
import type {VirshContext} from './context.js'
import {dropGdbStub, withGdbStub} from './gdb-stub.js'
import {INACTIVE, again, onOwnDomain} from './own-domain.js'
import {withinBladeMemory} from './blade-memory.js'
import {runAsOwner} from './run-as-owner.js'
import type {DomainState} from './virsh.js'
import {claimDefinedHere} from './slot-claims.js'

export interface DebugResult {
  name: string
  slot: string
  state: DomainState
  /** The gdb stub's UNIX socket on the blade, in a folder only the owner can enter. */
  debugSocket: string
  /** True with --stop: the CPUs wait at the reset vector until gdb continues them. */
  stopped: boolean
  /** The command that attaches gdb on the blade. */
  gdb: string
}

/**
 * `ie-virsh debug SLOT [--stop]` (thesis 4.8): redefines the domain with a gdb stub and boots
 * it. The stub is a UNIX socket that the VM's qemu, running as the owner, creates in
 * `<debugSocketDir>/<account>/`, a folder of the owner's with mode 0700 in a root-owned one:
 * no other user can connect to it, and nothing is shared between VMs, so there is no pool.
 * From a laptop, `shien vm debug` forwards it through the SSH connection.
 */
export async function debugSlot(ctx: VirshContext, rawSlot: string, opts: {stop: boolean}): Promise<DebugResult> {
  if (!ctx.limits.debug) {
    throw new ShienError(`Kernel debugging is not enabled for ${ctx.owner.account}.`, {
      code: 'DEBUG_NOT_ALLOWED',
      exit: 'refused',
      suggestions: ['Ask your instructor or an admin: debugging is granted per group (limits.groups.*.debug).'],
    })
  }
  const o = {signal: ctx.signal}
  return onOwnDomain(ctx, rawSlot, async (name, slot, before) => {
    if (!INACTIVE.includes(before)) {
      throw new ShienError(`${name} is ${before}; debug boots it itself, with the gdb stub.`, {
        code: 'DOMAIN_RUNNING',
        exit: 'refused',
        suggestions: [`Stop it first: ${again(ctx, `destroy ${slot}`)}`],
      })
    }
    await claimDefinedHere(ctx, name, slot)
    await ctx.images.check(slot, o)
    const folder = await ownerSocketFolder(ctx.config.debugSocketDir, ctx.owner)
    const debugSocket = join(folder, `${slot}.sock`)
    await runAsOwner(ctx, name)
    // With secrets: the definition written back must keep e.g. a console password of the template.
    const xml = await ctx.hypervisor.dumpXml(name, {...o, inactive: true, withSecrets: true})
    await ctx.hypervisor.define(withGdbStub(xml, {socket: debugSocket}), o)
    // libvirt always launches qemu with -S and resumes the CPUs afterwards unless asked to
    // start paused, so --stop is `start --paused` rather than a -S in the domain XML.
    try {
      await withinBladeMemory(ctx, name, () => ctx.hypervisor.start(name, {...o, paused: opts.stop}))
    } catch (error) {
      await dropGdbStub(ctx, name)
      throw error
    }
    const state = (await ctx.hypervisor.state(name, o)) ?? 'unknown'
    return {name, slot, state, debugSocket, stopped: opts.stop, gdb: `gdb -ex 'target remote ${debugSocket}'`}
  })
}

/**
 * `<dir>/<account>`, made the owner's with mode 0700. `dir` is root's, so only root can put
 * anything at that name; the owner may change what is inside their folder, which is theirs.
 * The folder is opened without following links and fixed through the descriptor.
 */
async function ownerSocketFolder(dir: string, owner: {uid: number; gid: number; account: string}): Promise<string> {
  await mkdir(dir, {recursive: true, mode: 0o755})
  await chown(dir, 0, 0)
  await chmod(dir, 0o755)
  const folder = join(dir, owner.account)
  await mkdir(folder, {mode: 0o700}).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  const handle = await open(folder, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
  try {
    await handle.chown(owner.uid, owner.gid)
    await handle.chmod(0o700)
  } finally {
    await handle.close()
  }
  return folder
}

export function describeDebug(r: DebugResult): string {
  return [
    `${r.name} is ${r.state} with a gdb stub on ${r.debugSocket}${r.stopped ? ', halted at the first instruction' : ''}.`,
    `Attach gdb on the blade with: ${r.gdb}`,
    'From your laptop: shien vm debug forwards it through SSH.',
  ].join('\n')
}
