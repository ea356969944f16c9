import type {BoxInfo} from './inspect.js'

/** Human summary of an inspected box: a few lines about the VM, then a table of its disks. */
export function formatBoxInfo(info: BoxInfo): string {
  const {ovf} = info
  const lines = [
    `Box       ${info.path} (${formatBytes(info.bytes)}, ${info.compression === 'gzip' ? 'tar.gz' : 'tar'}, ${info.entries.length} entries)`,
    `VM        ${ovf.name}${ovf.osType ? ` (${ovf.osType})` : ''}`,
    `Hardware  ${ovf.cpus} CPU${ovf.cpus === 1 ? '' : 's'}, ${ovf.memoryMiB} MiB memory, ${ovf.firmware.toUpperCase()} firmware`,
    `Provider  ${info.provider ?? '(no metadata.json)'}${info.hasVagrantfile ? ', has a Vagrantfile' : ''}`,
  ]
  if (info.privateKeys.length > 0) {
    lines.push(`Keys      ${info.privateKeys.join(', ')}: a private key; shien leaves it out of the upload`)
  }
  lines.push('', ...table(
    ['DISK', 'ENTRY', 'SIZE', 'FORMAT', 'CONTROLLER'],
    info.disks.map((disk) => [
      disk.diskId,
      disk.entry,
      formatBytes(disk.vmdk.capacityBytes),
      disk.vmdk.createType,
      disk.controller ? `${disk.controller.kind}${disk.addressOnParent === undefined ? '' : ` port ${disk.addressOnParent}`}` : '-',
    ]),
  ))
  if (info.warnings.length > 0) lines.push('', ...info.warnings.map((warning) => `Warning: ${warning}`))
  return lines.join('\n')
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()
  return [line(head), ...rows.map(line)]
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
