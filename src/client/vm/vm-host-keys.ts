import {recordHostKeys} from '../../transport/known-hosts-writer.js'
import type {SshTarget} from '../../transport/ssh-target.js'
import {type BladeNaming, knownHostsFileFor, vmHostKeyAlias} from './vm-login.js'

/** Where a VM's host keys were recorded, under which name, and how many lines it replaced. */
export interface RecordedHostKeys {
  alias: string
  path: string
  keys: number
  replaced: number
}

/**
 * Records the host keys harden made for a VM in the user's known_hosts (the blade's first
 * UserKnownHostsFile, hashed under its HashKnownHosts), under the VM's alias, in place of the
 * alias's old keys; no other line changes.
 */
export async function recordVmHostKeys(target: SshTarget, naming: BladeNaming, vm: {account: string; slot: string}, keys: string[]): Promise<RecordedHostKeys> {
  const alias = vmHostKeyAlias(vm.account, vm.slot, target)
  const done = await recordHostKeys(knownHostsFileFor(target, naming), alias, keys, {hash: target.hashKnownHosts})
  return {alias, path: done.path, keys: done.added, replaced: done.removed}
}

/** What a push did with the new VM's host keys: recorded under the alias, or why not. */
export type PushedHostKeys =
  | ({recorded: true} & RecordedHostKeys)
  | {recorded: false; alias?: string; reason: string}

/**
 * After a push succeeded: records the host keys harden made (the blade's reply) for the VM.
 * A failure here does not undo the push (the VM runs): it is reported, with what to do.
 */
export async function recordPushedHostKeys(target: SshTarget, naming: BladeNaming, vm: {account: string; slot: string}, keys: string[] | undefined): Promise<PushedHostKeys> {
  const alias = vmHostKeyAlias(vm.account, vm.slot, target)
  if (keys === undefined || keys.length === 0) return {recorded: false, alias, reason: 'the blade sent no host keys for the VM'}
  try {
    return {recorded: true, ...(await recordVmHostKeys(target, naming, vm, keys))}
  } catch (error) {
    return {recorded: false, alias, reason: (error as Error).message}
  }
}
