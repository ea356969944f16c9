import {Args, Flags} from '@oclif/core'

import {formatBytes} from '../../src/box/format-info.js'
import {verifyCatalog, type BoxVerdict, type VerifyResult} from '../../src/box/verify.js'
import {verifyFailure} from '../../src/box/verify-report.js'
import {ShienCommand} from '../../src/ui/base-command.js'

export default class BoxVerify extends ShienCommand {
  static override summary = 'Check that every box a Vagrant catalog lists matches its checksum and metadata.'

  static override description = `Reads the catalog (a path, file://, http:// or https:// URL; over http it must be served as
application/json, or Vagrant takes it for a box), then reads each listed box once, hashing it
while checking its metadata.json against the catalog's provider and its disk:
  virtualbox  a .ovf and sparse VMDKs that read only themselves
  libvirt     format qcow2, a whole-GiB virtual_size, and a box.img qcow2 with no backing file
A box without a checksum is read only as far as its metadata.json and disk header.

Exit code 3 means a box or the catalog failed a check; the message lists which.`

  static override examples = [
    {description: 'The catalog students add:', command: '<%= config.bin %> <%= command.id %> https://blade.example/boxes/os101/debian12.json'},
    {description: 'Only one version, from the shared folder:', command: '<%= config.bin %> <%= command.id %> /gfs2/shien/boxes/os101/debian12.json --version 2026.1.0'},
  ]

  static override args = {
    catalog: Args.string({required: true, description: 'Path or URL of the catalog JSON.'}),
  }

  static override flags = {
    version: Flags.string({description: 'Check only this version.'}),
    provider: Flags.string({description: 'Check only this provider (virtualbox, libvirt, ...).'}),
  }

  async run(): Promise<VerifyResult> {
    const {args, flags} = await this.parse(BoxVerify)
    const result = await verifyCatalog(args.catalog, {
      version: flags.version,
      provider: flags.provider,
      signal: this.abort.signal,
      onBox: this.jsonEnabled() ? undefined : (verdict) => process.stderr.write(line(verdict) + '\n'),
    })
    if (!result.ok) throw verifyFailure(result)
    if (!this.jsonEnabled()) this.log(`${result.name}: ${result.boxes.length} box${result.boxes.length === 1 ? '' : 'es'} in ${result.versions.length} version${result.versions.length === 1 ? '' : 's'} verified.`)
    return result
  }
}

function line(verdict: BoxVerdict): string {
  const status = verdict.problems.length === 0 ? 'ok' : 'FAILED'
  const checksum = verdict.checksum === 'none' ? 'no checksum listed' : `checksum ${verdict.checksum}`
  return `${status.padEnd(6)} ${verdict.version} ${verdict.provider}: ${checksum}, ${formatBytes(verdict.bytes)} read${verdict.problems.map((p) => `\n         ${p}`).join('')}`
}
