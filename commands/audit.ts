import {Args, Flags} from '@oclif/core'

import {auditImages, type AuditEvent} from '../src/audit/audit-images.js'
import {auditLive} from '../src/audit/live/audit-live.js'
import {loadConfigs, planImagesAudit} from '../src/audit/plan.js'
import {renderAudit} from '../src/audit/render.js'
import type {AuditResult} from '../src/audit/types.js'
import {DEFAULT_CONFIG_PATH} from '../src/config/blade-config.js'
import {ShienCommand} from '../src/ui/base-command.js'

export default class Audit extends ShienCommand {
  static override summary = 'Find weak credentials in converted images and running VMs (for admins, as root).'

  static override description = `Without --live, reads every image under <root>/users/*/images (or the images and folders you
name) read-only with libguestfs, one appliance launch per image, several at once: Vagrant's
insecure keys, weak passwords, passwordless sudo, sshd's effective password and root login
settings, host keys shared between images or with a published box, private keys left behind,
world-writable key files and homes, and images that are not a plain qcow2 in their owner's folder.

With --live, probes the running domains of this blade's libvirt over their network: SSH logins
with the insecure keys and weak passwords (bounded), and which of the configured TCP ports listen.

Exit status: 0 nothing high, 10 high-severity findings, 11 some targets could not be audited
(docs/audit.md). Settings: the "audit" section of the blade configuration.`

  static override examples = [
    {description: 'Every image on the blade:', command: '<%= config.bin %> audit'},
    {description: 'One image, or a folder of images:', command: '<%= config.bin %> audit /gfs2/shien/users/e195701/images/01.qcow2'},
    {description: 'The running VMs, for cron:', command: '<%= config.bin %> audit --live --json'},
  ]

  static override strict = false

  static override args = {
    paths: Args.string({description: 'Images (.qcow2) or folders of images; default: every image under the storage root.'}),
  }

  static override flags = {
    live: Flags.boolean({description: 'Probe the running domains of this blade over their network instead of reading images.'}),
    config: Flags.string({description: 'Blade configuration file.', default: DEFAULT_CONFIG_PATH}),
    concurrency: Flags.integer({description: 'Images (or domains with --live) audited at once; default from the configuration.', min: 1}),
  }

  async run(): Promise<AuditResult> {
    const {argv, flags} = await this.parse(Audit)
    const paths = argv as string[]
    if (flags.live && paths.length > 0) this.error('--live takes no paths: it probes every running domain of this blade.', {exit: 2})
    const onEvent = this.jsonEnabled() ? undefined : (e: AuditEvent) => this.progress(e)
    let result: AuditResult
    let root: string
    if (flags.live) {
      const loaded = await loadConfigs(flags.config, flags.concurrency)
      root = loaded.root
      result = await auditLive({blade: loaded.blade, config: loaded.audit}, {signal: this.abort.signal})
    } else {
      const plan = await planImagesAudit({paths, configPath: flags.config, concurrency: flags.concurrency})
      root = plan.root
      result = await auditImages(plan, {signal: this.abort.signal, onEvent})
    }
    if (!this.jsonEnabled()) this.log(renderAudit(result, root, process.stdout.isTTY ? process.stdout.columns : undefined))
    // Set, not thrown: the result (table or JSON) is printed in full either way.
    process.exitCode = result.exitCode
    return result
  }

  private progress(e: AuditEvent): void {
    if (e.type === 'image:start') this.logToStderr(`auditing ${e.path}`)
    if (e.type === 'image:end') this.logToStderr(`  ${e.report.status} in ${(e.report.durationMs / 1000).toFixed(1)} s: ${e.report.path} (${e.findings} finding(s))`)
    if (e.type === 'boxes:start') this.logToStderr(`reading the host keys of ${e.count} published box(es)`)
  }
}
