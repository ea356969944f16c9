/**
 * `shien admin migrate ACCOUNT-SLOT --to BLADE`: one student's VM moved to another blade of the
 * cluster (docs/cluster.md, the recipe in docs/multi-blade-notes.md). A running VM moves live
 * with libvirt's own migration (`virsh migrate --live --p2p --persistent --undefinesource`: the
 * image is on the shared storage, so only the memory travels); a stopped one is defined on the
 * destination and undefined at the source. The destination's XML is the source's with the SSH
 * forward on the destination's listen address, both for the running VM and its persistent
 * definition. The slot's record moves only once libvirt has moved the VM; a failed migration
 * leaves the VM where it was (libvirt stops the receiving side) and the record as it was.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {listenAddressOf, bladeNamed, type ClusterBlade} from '../cluster/blades.js'
import {domainName, userPaths} from '../config/storage-layout.js'
import {ShienError} from '../errors.js'
import {withAccountLock} from '../privileged/lock.js'
import {runTool, type ToolResult} from '../process/run.js'
import {admitToQemuState} from '../virsh/owner-label.js'
import type {DomainState} from '../virsh/virsh.js'
import type {ClusterAdmin} from './cluster-admin.js'

/** One VM moved (or found where it was asked to go). */
export interface MoveReport {
  vm: string
  from: string
  to: string
  /** `live`: migrated running; `defined`: a stopped VM defined there; `none`: it was there already. */
  how: 'live' | 'defined' | 'none'
  /** libvirt's figures for a live migration (`domjobinfo --completed` on the destination), when it gives them. */
  downtimeMs?: number
  elapsedMs?: number
}

/** States in which the VM has a qemu running: it moves live. */
const STOPPED: ReadonlySet<DomainState> = new Set(['shut off', 'crashed'])

/** How long a live migration runs before libvirt pauses the VM to let it finish (`--timeout`): it then always converges. */
const MIGRATION_TIMEOUT_S = 600

/**
 * Moves `account`'s slot from the blade its record names to `to`, under the account's lock (so
 * the student's own ie-virsh define, start or undefine waits for it, on any blade).
 */
export async function moveSlot(ctx: ClusterAdmin, account: string, slot: string, toName: string): Promise<MoveReport> {
  const to = bladeNamed(ctx.cluster, toName)
  const vm = domainName(account, slot)
  return withAccountLock(userPaths(ctx.root, account).lock, async () => {
    const record = await ctx.records.read(account, slot)
    if (record === undefined) {
      throw new ShienError(`${vm} is defined on no blade: the cluster has no record of it.`, {
        code: 'SLOT_UNCLAIMED',
        exit: 'refused',
        suggestions: ['See the account\'s VMs: shien vm list (as the student), or the records in <storageRoot>/cluster/slots/.'],
      })
    }
    const from = bladeNamed(ctx.cluster, record.blade)
    if (from.name === to.name) return {vm, from: from.name, to: to.name, how: 'none'}
    const source = ctx.libvirt(from)
    const state = await source.state(vm, {signal: ctx.signal})
    if (state === undefined) {
      throw new ShienError(`${vm} is recorded on ${from.name}, but ${from.name}'s libvirt has no domain of that name.`, {
        code: 'SLOT_NOT_ON_BLADE',
        exit: 'remote',
        suggestions: [`If ${from.name} is down, its VMs are started elsewhere with: sudo shien admin recover ${from.name}`],
      })
    }
    if ((await ctx.libvirt(to).state(vm, {signal: ctx.signal})) !== undefined) throw alreadyThere(vm, to)
    const persistent = forwardOn(await source.dumpXml(vm, {signal: ctx.signal, inactive: true, withSecrets: true}), ctx, to)
    await admitHere(ctx, to, persistent)
    const report: MoveReport = STOPPED.has(state)
      ? await moveStopped(ctx, vm, from, to, persistent)
      : await moveLive(ctx, vm, from, to, persistent)
    await ctx.records.move(account, slot, to.name, {admin: true, from: from.name}, {signal: ctx.signal})
    await ctx.xmls.keep(account, slot, persistent)
    return report
  }, {signal: ctx.signal, waitSeconds: 60})
}

/** Live: libvirt migrates the running VM, the source's libvirtd driving it (`--p2p`) to the destination's migration URI. */
async function moveLive(ctx: ClusterAdmin, vm: string, from: ClusterBlade, to: ClusterBlade, persistent: string): Promise<MoveReport> {
  const running = forwardOn(await ctx.libvirt(from).dumpXml(vm, {signal: ctx.signal, withSecrets: true, migratable: true}), ctx, to)
  const dir = await mkdtemp('/tmp/shien-migrate-')
  try {
    const live = join(dir, 'live.xml')
    const kept = join(dir, 'persistent.xml')
    await writeFile(live, running, {mode: 0o600, flag: 'wx'})
    await writeFile(kept, persistent, {mode: 0o600, flag: 'wx'})
    const args = [
      '-c', ctx.uriOf(from), 'migrate', '--live', '--p2p', '--persistent', '--undefinesource',
      '--xml', live, '--persistent-xml', kept, '--timeout', String(MIGRATION_TIMEOUT_S),
      ...(ctx.config.cluster?.unsafeMigration === true ? ['--unsafe'] : []),
      ...(to.migrationAddress === undefined ? [] : ['--migrateuri', `tcp://${to.migrationAddress.includes(':') ? `[${to.migrationAddress}]` : to.migrationAddress}`]),
      vm, to.migrationUri,
    ]
    const r = await runTool('virsh', args, {signal: ctx.signal, timeoutMs: (MIGRATION_TIMEOUT_S + 60) * 1000})
    if (r.exitCode !== 0) throw migrationFailed(vm, from, to, r)
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
  return {vm, from: from.name, to: to.name, how: 'live', ...(await jobFigures(ctx, to, vm))}
}

/** Stopped: defined on the destination, then undefined at the source; if that fails, the destination's definition goes again. */
async function moveStopped(ctx: ClusterAdmin, vm: string, from: ClusterBlade, to: ClusterBlade, persistent: string): Promise<MoveReport> {
  const target = ctx.libvirt(to)
  await target.define(persistent, {signal: ctx.signal})
  try {
    await ctx.libvirt(from).undefine(vm, {signal: ctx.signal})
  } catch (error) {
    await target.undefine(vm, {signal: ctx.signal}).catch(() => undefined)
    throw error
  }
  return {vm, from: from.name, to: to.name, how: 'defined'}
}

/** The domain XML with its SSH forward on `blade`'s listen address (the port is the slot's, cluster-wide). */
export function forwardOn(xml: string, ctx: Pick<ClusterAdmin, 'config'>, blade: ClusterBlade): string {
  const address = listenAddressOf(blade, ctx.config)
  return xml.replace(/(hostfwd=tcp:)([^:,']*|\[[^\]]*\])(:\d+-:22)/g, (_all, head: string, _old: string, tail: string) => `${head}${address}${tail}`)
}

/**
 * Where the destination is this blade, the VM's owner is let through its libvirt state folder
 * (as ie-virsh does at define). Another blade's folder admits the students' group at install
 * (README, the cluster install): this blade cannot reach it.
 */
async function admitHere(ctx: ClusterAdmin, to: ClusterBlade, xml: string): Promise<void> {
  if (to.name !== ctx.cluster.self.name) return
  const label = /<label>\+(\d+):\+(\d+)<\/label>/.exec(xml)
  if (label === null) return
  await admitToQemuState(ctx.config.qemuStateDir, {uid: Number(label[1]), gid: Number(label[2])}, {signal: ctx.signal})
}

/** libvirt's downtime and elapsed time of the finished migration, as the destination keeps them. */
async function jobFigures(ctx: ClusterAdmin, to: ClusterBlade, vm: string): Promise<{downtimeMs?: number; elapsedMs?: number}> {
  const r = await runTool('virsh', ['-c', ctx.uriOf(to), 'domjobinfo', '--completed', vm], {signal: ctx.signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) return {}
  const figure = (label: string) => {
    const m = new RegExp(`^${label}:\\s+(\\d+)\\s*ms`, 'm').exec(r.stdout)
    return m === null ? undefined : Number(m[1])
  }
  const downtimeMs = figure('Total downtime')
  const elapsedMs = figure('Time elapsed')
  return {...(downtimeMs === undefined ? {} : {downtimeMs}), ...(elapsedMs === undefined ? {} : {elapsedMs})}
}

function migrationFailed(vm: string, from: ClusterBlade, to: ClusterBlade, r: ToolResult): ShienError {
  const reason = r.timedOut ? `it took longer than ${MIGRATION_TIMEOUT_S} s` : r.stderr.split('\n').map((l) => l.trim().replace(/^error:\s*/, '')).filter(Boolean).join(': ') || 'no error output'
  return new ShienError(`libvirt could not migrate ${vm} from ${from.name} to ${to.name}: ${reason}. The VM runs on at ${from.name}; its record is unchanged.`, {
    code: 'MIGRATION_FAILED',
    exit: 'remote',
    suggestions: [
      `Check that ${from.name}'s libvirtd reaches ${to.migrationUri} as root, and that ${to.name}'s firewall lets its migration ports in (README, the cluster install).`,
      `Permission denied on ${to.name}: the students' group must be let through its libvirt state folder (setfacl -m g:GROUP:--x /var/lib/libvirt/qemu).`,
    ],
  })
}

function alreadyThere(vm: string, to: ClusterBlade): ShienError {
  return new ShienError(`${to.name}'s libvirt already has a domain named ${vm}, though the records put it elsewhere: nothing was moved.`, {
    code: 'SLOT_DEFINED_TWICE',
    exit: 'remote',
    suggestions: [`Compare the two definitions (virsh -c ${to.migrationUri} dumpxml ${vm}) and undefine the stale one on ${to.name}.`],
  })
}
