import {renderTable} from '../text-table.js'
import type {BoxInfo} from './inspect.js'

/** Human summary of an inspected box: a few lines about the VM, then a table of its disks. */
export function formatBoxInfo(info: BoxInfo): string {
  const {machine} = info
  const hardware = [
    machine.cpus === undefined ? undefined : `${machine.cpus} CPU${machine.cpus === 1 ? '' : 's'}`,
    machine.memoryMiB === undefined ? undefined : `${machine.memoryMiB} MiB memory`,
    `${info.firmware ? info.firmware.toUpperCase() : 'firmware not declared (BIOS unless told)'}${info.firmware ? ' firmware' : ''}`,
  ].filter((part) => part !== undefined)
  const lines = [
    `Box       ${info.path} (${formatBytes(info.bytes)}, ${info.compression === 'gzip' ? 'tar.gz' : 'tar'}, ${info.entries.length} entries)`,
    `Provider  ${info.provider}${info.metadata ? '' : ' (no metadata.json)'}${info.hasVagrantfile ? ', has a Vagrantfile' : ''}`,
    `Arch      ${info.architecture ?? 'not declared'}${info.architectureClaims.length > 0 ? ` (${info.architectureClaims.map((c) => c.source).join(', ')})` : ''}`,
    `VM        ${machine.name ?? info.configEntry ?? '(no machine configuration)'}${machine.osType ? ` (${machine.osType})` : ''}`,
    `Hardware  ${hardware.join(', ')}`,
  ]
  if (info.privateKeys.length > 0) {
    lines.push(`Keys      ${info.privateKeys.join(', ')}: a private key; shien leaves it out of the upload`)
  }
  lines.push('', renderTable(
    ['DISK', 'ENTRY', 'SIZE', 'FORMAT', 'CONTROLLER'],
    info.disks.map((disk) => [
      disk.diskId,
      disk.files.length > 1 && disk.format === 'vmdk' ? `${disk.entry} (+${disk.files.length - 1} extents)` : disk.entry,
      formatBytes(disk.capacityBytes),
      disk.format === disk.subformat ? disk.format : `${disk.format} ${disk.subformat}`,
      disk.controller ? `${disk.controller.kind}${disk.addressOnParent === undefined ? '' : ` port ${disk.addressOnParent}`}` : '-',
    ]),
  ))
  if (info.warnings.length > 0) lines.push('', ...info.warnings.map((warning) => `Warning: ${warning}`))
  return lines.join('\n')
}

/** Binary units, one decimal: disk sizes are powers of two. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`
}
