/**
 * `shien admin drain`, `undrain` and `recover` (docs/cluster.md): a blade emptied for
 * maintenance, given back to placement, or, when it is down, its VMs started elsewhere from the
 * XML kept on the shared storage.
 */
import {bladeNamed, type ClusterBlade} from '../cluster/blades.js'
import {placeVm, type PassedOver} from '../cluster/placement.js'
import {domainName, userPaths} from '../config/storage-layout.js'
import {ShienError} from '../errors.js'
import type {DrainMark} from '../privileged/drained-blades.js'
import {withAccountLock} from '../privileged/lock.js'
import type {SlotRecord} from '../privileged/slot-records.js'
import {vmShape} from '../cluster/vm-shape.js'
import {clusterFacts, libvirtAnswers, type ClusterAdmin} from './cluster-admin.js'
import {forwardOn, moveSlot, type MoveReport} from './migrate.js'

/** A VM that could not be moved or recovered, and why; the others go on. */
export interface VmFailure {
  vm: string
  code: string
  message: string
}

export interface DrainReport {
  blade: string
  mark: DrainMark
  moved: MoveReport[]
  failed: VmFailure[]
}

/**
 * Marks `blade` drained (placement gives it no new VM), then moves every VM recorded on it: each
 * to the blade placement chooses at that moment (or `to`), live where it runs. A VM that cannot
 * move stays where it is and is reported; the mark stays until `undrain`.
 */
export async function drainBlade(ctx: ClusterAdmin, name: string, o: {to?: string} = {}): Promise<DrainReport> {
  const blade = bladeNamed(ctx.cluster, name)
  if (o.to !== undefined && bladeNamed(ctx.cluster, o.to).name === blade.name) throw sameBlade(blade, 'drain')
  const mark = await ctx.drained.drain(blade.name, ctx.admin)
  const report: DrainReport = {blade: blade.name, mark, moved: [], failed: []}
  for (const record of await recordsOn(ctx, blade)) {
    const vm = domainName(record.account, record.slot)
    try {
      const source = ctx.libvirt(blade)
      const state = await source.state(vm, {signal: ctx.signal})
      if (state === undefined) throw notOnBlade(vm, blade)
      const shape = vmShape(await source.dumpXml(vm, {signal: ctx.signal, inactive: true}))
      // A stopped VM takes no memory where it goes; it is placed by architecture and load alone.
      const memoryMiB = state === 'shut off' || state === 'crashed' ? 0 : shape.memoryMiB
      const placed = placeVm(ctx.cluster, await clusterFacts(ctx), {name: vm, arch: shape.arch, memoryMiB, ...(o.to === undefined ? {} : {blade: o.to})})
      report.moved.push(await moveSlot(ctx, record.account, record.slot, placed.blade.name))
    } catch (error) {
      if (ctx.signal.aborted) throw error
      report.failed.push(failure(vm, error))
    }
  }
  return report
}

export interface UndrainReport {
  blade: string
  /** The mark removed; absent when the blade was not drained. */
  was?: DrainMark
}

/** Gives `blade` back to placement. Its VMs stay where drain put them. */
export async function undrainBlade(ctx: ClusterAdmin, name: string): Promise<UndrainReport> {
  const blade = bladeNamed(ctx.cluster, name)
  const was = await ctx.drained.undrain(blade.name)
  return {blade: blade.name, ...(was === undefined ? {} : {was})}
}

/** One VM of a dead blade, defined (and started) on another. */
export interface RecoveredVm {
  vm: string
  to: string
  started: boolean
  /** Why it did not start, when it did not. */
  why?: string
  passedOver: PassedOver[]
}

export interface RecoverReport {
  blade: string
  /** Why the blade counts as down: its libvirtd's answer. */
  down: string
  mark: DrainMark
  recovered: RecoveredVm[]
  failed: VmFailure[]
}

/**
 * Starts a dead blade's VMs on the others. An admin confirms the blade is down; recover checks
 * too, and refuses while that blade's libvirtd answers (its VMs may run: starting them again
 * elsewhere would run one image twice). The blade is marked drained, so placement passes it over
 * when it comes back, with its stale definitions, until an admin undrains it. Each VM is defined
 * from the XML ie-virsh kept at define, its record moved with `from` naming the dead blade.
 */
export async function recoverBlade(ctx: ClusterAdmin, name: string, o: {to?: string} = {}): Promise<RecoverReport> {
  const blade = bladeNamed(ctx.cluster, name)
  if (blade.name === ctx.cluster.self.name) throw sameBlade(blade, 'recover')
  if (o.to !== undefined && bladeNamed(ctx.cluster, o.to).name === blade.name) throw sameBlade(blade, 'recover')
  const probe = await libvirtAnswers(ctx, blade)
  if (probe.answers) {
    throw new ShienError(`${blade.name}'s libvirtd answers (${blade.migrationUri}): it is not down, and its VMs may be running there. Starting them elsewhere would run the same images twice.`, {
      code: 'BLADE_ANSWERS',
      exit: 'refused',
      suggestions: [`To move its VMs off a blade that runs: sudo shien admin drain ${blade.name}`],
    })
  }
  const down = probe.why ?? 'no answer'
  const mark = await ctx.drained.drain(blade.name, ctx.admin)
  const report: RecoverReport = {blade: blade.name, down, mark, recovered: [], failed: []}
  for (const record of await recordsOn(ctx, blade)) {
    const vm = domainName(record.account, record.slot)
    try {
      report.recovered.push(await recoverOne(ctx, blade, record, o.to))
    } catch (error) {
      if (ctx.signal.aborted) throw error
      report.failed.push(failure(vm, error))
    }
  }
  return report
}

async function recoverOne(ctx: ClusterAdmin, dead: ClusterBlade, record: SlotRecord, to: string | undefined): Promise<RecoveredVm> {
  const {account, slot} = record
  const vm = domainName(account, slot)
  return withAccountLock(userPaths(ctx.root, account).lock, async () => {
    const now = await ctx.records.read(account, slot)
    if (now?.blade !== dead.name) throw new ShienError(`${vm}'s record changed meanwhile (now ${now?.blade ?? 'none'}).`, {code: 'SLOT_MOVED', exit: 'refused'})
    const kept = await ctx.xmls.read(account, slot)
    if (kept === undefined) {
      throw new ShienError(`No XML of ${vm} is kept on the shared storage, so it cannot be defined elsewhere.`, {
        code: 'DOMAIN_XML_MISSING',
        exit: 'remote',
        suggestions: [`The student can push the slot again (shien push --slot ${slot}), or define it again (shien vm define ${slot}) once ${dead.name}'s record is released.`],
      })
    }
    const shape = vmShape(kept)
    const facts = await clusterFacts(ctx, new Map([[dead.name, 'is being recovered']]))
    const placed = placeVm(ctx.cluster, facts, {name: vm, arch: shape.arch, memoryMiB: shape.memoryMiB, ...(to === undefined ? {} : {blade: to})})
    const target = ctx.libvirt(placed.blade)
    if ((await target.state(vm, {signal: ctx.signal})) !== undefined) {
      throw new ShienError(`${placed.blade.name}'s libvirt already has a domain named ${vm}: nothing was defined.`, {code: 'SLOT_DEFINED_TWICE', exit: 'remote'})
    }
    const xml = forwardOn(kept, ctx, placed.blade)
    await target.define(xml, {signal: ctx.signal})
    await ctx.records.move(account, slot, placed.blade.name, {admin: true, from: dead.name}, {signal: ctx.signal})
    await ctx.xmls.keep(account, slot, xml)
    const started = await target.start(vm, {signal: ctx.signal}).then(() => ({started: true}), (error: unknown) => ({started: false, why: error instanceof Error ? error.message : String(error)}))
    return {vm, to: placed.blade.name, ...started, passedOver: placed.passedOver}
  }, {signal: ctx.signal, waitSeconds: 60})
}

async function recordsOn(ctx: ClusterAdmin, blade: ClusterBlade): Promise<SlotRecord[]> {
  return (await ctx.records.list()).filter((r) => r.blade === blade.name)
}

function failure(vm: string, error: unknown): VmFailure {
  return error instanceof ShienError
    ? {vm, code: error.code, message: error.message}
    : {vm, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error)}
}

function notOnBlade(vm: string, blade: ClusterBlade): ShienError {
  return new ShienError(`${vm} is recorded on ${blade.name}, but ${blade.name}'s libvirt has no domain of that name.`, {code: 'SLOT_NOT_ON_BLADE', exit: 'remote'})
}

function sameBlade(blade: ClusterBlade, command: 'drain' | 'recover'): ShienError {
  return new ShienError(command === 'drain'
    ? `--to names ${blade.name}, the blade being drained.`
    : `${blade.name} is the blade to recover; run recover on another blade, and with --to naming another blade.`, {
    code: 'USAGE',
    exit: 'usage',
    suggestions: ['Name another blade of the cluster.'],
  })
}

/** The lines an admin reads. */
export function describeDrain(r: DrainReport): string {
  return [
    `${r.blade} is drained (since ${r.mark.since}, by ${r.mark.by}): placement gives it no new VM until shien admin undrain ${r.blade}.`,
    ...r.moved.map(describeMove),
    ...r.failed.map((f) => `${f.vm}: not moved (${f.code}): ${f.message}`),
    r.moved.length + r.failed.length === 0 ? `No VM was recorded on ${r.blade}.` : `${r.moved.length} moved, ${r.failed.length} not.`,
  ].join('\n')
}

export function describeMove(m: MoveReport): string {
  if (m.how === 'none') return `${m.vm} is on ${m.to} already.`
  if (m.how === 'defined') return `${m.vm}: defined on ${m.to} (it was stopped), undefined on ${m.from}.`
  const figures = m.downtimeMs === undefined ? '' : ` (downtime ${m.downtimeMs} ms${m.elapsedMs === undefined ? '' : `, ${(m.elapsedMs / 1000).toFixed(1)} s in all`})`
  return `${m.vm}: migrated live from ${m.from} to ${m.to}${figures}.`
}

export function describeUndrain(r: UndrainReport): string {
  return r.was === undefined ? `${r.blade} was not drained; nothing changed.` : `${r.blade} takes new VMs again (drained since ${r.was.since} by ${r.was.by}).`
}

export function describeRecover(r: RecoverReport): string {
  return [
    `${r.blade} does not answer (${r.down}); it is marked drained until shien admin undrain ${r.blade}.`,
    ...r.recovered.map((v) => `${v.vm}: defined on ${v.to}${v.started ? ' and started' : `, not started: ${v.why}`}.`),
    ...r.failed.map((f) => `${f.vm}: not recovered (${f.code}): ${f.message}`),
    r.recovered.length + r.failed.length === 0 ? `No VM was recorded on ${r.blade}.` : `${r.recovered.length} recovered, ${r.failed.length} not.`,
    ...(r.recovered.length > 0 ? [`When ${r.blade} is back, its libvirtd still has these VMs defined: ie-virsh refuses to start them there (their records name the new blades); undefine them there (virsh undefine --keep-nvram NAME) before undrain.`] : []),
  ].join('\n')
}
