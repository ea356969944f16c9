import {ShienError} from '../../errors.js'
import {parseSlot} from '../../names.js'
import {runAttached, runTool} from '../../process/run.js'
import {hasHostEntry, readKnownHostsFiles} from '../../transport/known-hosts.js'
import type {BladeClient} from '../blade-client.js'
import {ieVirshArgs, type VmPlan} from './plan.js'
import type {VmDeps} from './session.js'
import {onSlotBlade} from './slot-blade.js'
import {recordVmHostKeys} from './vm-host-keys.js'
import {resolveSshTarget} from '../../transport/ssh-target.js'
import {sshArgv, type VmAddress, vmLogin, type VmLogin} from './vm-login.js'

/** What `ie-virsh list --json` says of the caller's VMs (the fields a login needs). */
interface VmList {
  account: string
  domains: Array<{slot: string; name: string; state: string; sshPort?: number; ssh?: string}>
}

/** A VM to log in to: its domain and state, the login, and how its host keys came to be known. */
export interface VmLoginPlan {
  vm: string
  slot: string
  state: string
  login: VmLogin
  /**
   * `known`: known_hosts had entries for the alias (a push from this laptop wrote them);
   * `recorded`: it had none, and the blade's record of the VM's keys was written there now.
   */
  hostKeys: {alias: string; path: string; status: 'known' | 'recorded'}
}

/**
 * Finds a VM's SSH forward on the blade (ie-virsh list) and makes sure its host keys are in
 * known_hosts under the VM's alias: when there are none (the VM was pushed from another
 * laptop), the keys harden made are taken from the blade, whose own key was just verified.
 * Entries already there are left alone, so a key that does not match them is refused.
 */
export async function planVmLogin(plan: VmPlan, rawSlot: string, deps: VmDeps, o: {running: boolean}): Promise<VmLoginPlan> {
  const slot = parseSlot(rawSlot)
  checkJumpNone(plan)
  // On a cluster, a slot another blade has is found there (slot-blade.ts): the login goes through that blade.
  return onSlotBlade(plan, slot, deps, async (on, blade) => {
    const list = await blade.virsh<VmList>(ieVirshArgs(on, ['list']), {signal: deps.signal})
    const domain = list.domains.find((d) => d.slot === slot)
    if (domain === undefined) {
      throw new ShienError(`Slot ${slot} has no VM (${list.account}-${slot} is not defined).`, {
        code: 'NOT_DEFINED', exit: 'refused', suggestions: ['Push one first: shien push --slot ' + slot, 'See your VMs: shien vm list'],
      })
    }
    const address = addressOf(list.account, slot, domain)
    if (o.running && domain.state !== 'running') {
      throw new ShienError(`${domain.name} is ${domain.state}, so nothing answers on its SSH port.`, {
        code: 'VM_NOT_RUNNING', exit: 'refused', suggestions: [`Start it first: shien vm start ${slot}`],
      })
    }
    const login = vmLogin(on.target, on.naming, address)
    const hostKeys = await ensureHostKeys(on, blade, login, address, deps.signal)
    return {vm: domain.name, slot, state: domain.state, login, hostKeys}
  })
}

function addressOf(account: string, slot: string, domain: VmList['domains'][number]): VmAddress {
  // ie-virsh prints `ssh -p PORT vagrant@HOST`, HOST as the blade reaches the forward.
  const host = /@(\S+)$/.exec(domain.ssh ?? '')?.[1]
  if (domain.sshPort === undefined || host === undefined) {
    throw new ShienError(`${domain.name} has no SSH port forward (its domain template gives it none).`, {
      code: 'NO_SSH_FORWARD', exit: 'refused', suggestions: [`Use its serial console: shien vm console ${slot}`, 'Or ask an admin for a template with an SSH forward.'],
    })
  }
  return {account, slot, host, port: domain.sshPort}
}

async function ensureHostKeys(plan: VmPlan, blade: BladeClient, login: VmLogin, vm: VmAddress, signal: AbortSignal): Promise<VmLoginPlan['hostKeys']> {
  const files = await readKnownHostsFiles([login.userKnownHostsFile, ...plan.target.globalKnownHostsFiles])
  const known = files.find((f) => hasHostEntry(f.text, login.hostKeyAlias))
  if (known) return {alias: login.hostKeyAlias, path: known.path, status: 'known'}
  // The blade step reads the caller's own records: an admin's --account would get the admin's keys.
  const {hostKeys} = plan.account === undefined ? await blade.call('host-keys', {slot: vm.slot}, {signal}) : {hostKeys: []}
  if (hostKeys.length === 0) {
    throw new ShienError(`The blade has no record of ${vm.account}-${vm.slot}'s host keys, so its first login could not be checked.`, {
      code: 'HOST_KEYS_UNKNOWN', exit: 'refused', suggestions: [`Push the VM again (shien push --slot ${vm.slot} --replace): the push records its host keys.`],
    })
  }
  const done = await recordVmHostKeys(plan.target, plan.naming, vm, hostKeys)
  return {alias: done.alias, path: done.path, status: 'recorded'}
}

/**
 * OpenSSH's ProxyJump reaches the blade as `ssh -W` would, with the blade's own ProxyJump: it
 * cannot say "without it" as `--jump none` does. Refused when that would reach the blade
 * another way than shien did (the configuration gives the blade a ProxyJump).
 */
function checkJumpNone(plan: VmPlan): void {
  if (plan.naming.jump !== 'none') return
  const configured = resolveSshTarget(plan.naming.bladeSpec, {home: plan.naming.home})
  if (configured.via.length === 0) return
  throw new ShienError(`--jump none cannot be passed on to OpenSSH: its ProxyJump to ${plan.naming.bladeSpec} would still go through ${configured.via.map((h) => h.alias).join(', ')}.`, {
    code: 'USAGE', exit: 'usage', suggestions: ['Leave out --jump none, or name the hops to use with --jump HOST[,HOST].'],
  })
}

/** What `shien vm ssh --json -- COMMAND` returns: the command's exit code and output. */
export interface VmSshResult {
  vm: string
  slot: string
  host: string
  exitCode: number
  stdout: string
  stderr: string
}

/**
 * Runs `command` on the VM with OpenSSH (stdin from /dev/null: nobody types into it) and
 * returns its output. ssh's own failures (exit 255: no connection, a refused host key or
 * login) are errors; any other exit code is the command's and is returned.
 */
export async function runVmSshCommand(target: VmLoginPlan, command: string[]): Promise<VmSshResult> {
  const r = await runTool('ssh', ['-n', ...sshArgv(target.login, command)], {env: 'user', cwd: process.cwd()})
  if (!r.started) throw sshMissing(new Error(r.stderr))
  if (r.exitCode === 255) {
    const said = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('@@@')).slice(-3).join(' ')
    throw new ShienError(`ssh could not log in to ${target.vm} (${target.login.host}): ${said || 'exit 255'}.`, {
      code: 'SSH_LOGIN_FAILED', exit: 'connection',
      suggestions: [`If the host key was refused and you did not push this VM again, someone may be in the way: ask an admin. After a push from another laptop, remove the old keys (ssh-keygen -R ${target.login.hostKeyAlias}) and run it again.`],
    })
  }
  return {vm: target.vm, slot: target.slot, host: target.login.host, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr}
}

function sshMissing(cause: unknown): ShienError {
  return new ShienError('OpenSSH (ssh) is not installed: shien vm ssh runs it.', {
    code: 'SSH_CONFIG', exit: 'badInput', suggestions: ['Install the OpenSSH client (it comes with macOS and most Linux systems).'], cause,
  })
}

/** Runs OpenSSH's `ssh` for the login on this terminal, `command` after `--`; resolves with ssh's exit code. */
export async function runVmSsh(login: VmLogin, command: string[]): Promise<number> {
  try {
    return await runAttached('ssh', sshArgv(login, command), {env: 'user', cwd: process.cwd()})
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    throw sshMissing(error)
  }
}
