import {ShienError} from '../errors.js'
import type {VirshContext} from './context.js'
import {findTemplate, templateSummary} from './template.js'
import {INACTIVE, again, onOwnDomain} from './own-domain.js'
import {usesSshPort} from './template.js'

export interface DumpXmlResult {
  name: string
  slot: string
  xml: string
}

/**
 * `ie-virsh dumpxml SLOT`: the domain's XML as libvirt holds it (live when running). It never
 * asks for --security-info, so libvirt leaves out what a template may hold for admins only,
 * such as console passwords.
 */
export function dumpXmlSlot(ctx: VirshContext, rawSlot: string): Promise<DumpXmlResult> {
  return onOwnDomain(ctx, rawSlot, async (name, slot) => {
    const xml = await ctx.hypervisor.dumpXml(name, {signal: ctx.signal})
    return {name, slot, xml}
  })
}

export interface ConsoleResult {
  name: string
  slot: string
  /** virsh console's exit code (0 after leaving with Ctrl-]). */
  exitCode: number
}

/**
 * `ie-virsh console SLOT`: attaches `virsh console` to the caller's terminal. Ownership and
 * state are checked under the account's lock; the session itself runs outside it, since it
 * lasts as long as the student wants and must not block the account's other commands.
 */
export async function consoleSlot(ctx: VirshContext, rawSlot: string): Promise<ConsoleResult> {
  if (!ctx.isTty) {
    throw new ShienError('console needs a terminal.', {
      code: 'NOT_A_TERMINAL',
      exit: 'usage',
      suggestions: ['From your laptop: shien vm console SLOT', 'On the blade: ssh -t BLADE sudo ie-virsh console SLOT'],
    })
  }
  const {name, slot} = await onOwnDomain(ctx, rawSlot, async (name, slot, state) => {
    if (INACTIVE.includes(state)) {
      throw new ShienError(`${name} is ${state}; a console needs a running VM.`, {
        code: 'NOT_RUNNING',
        exit: 'refused',
        suggestions: [`Start it first: ${again(ctx, `start ${slot}`)}`],
      })
    }
    return {name, slot}
  })
  const exitCode = await ctx.hypervisor.console(name, {signal: ctx.signal})
  return {name, slot, exitCode}
}

export interface TemplateInfo {
  name: string
  path: string
  /** The first line of the template's leading comment. */
  summary: string
  /** Whether VMs from it get an SSH port forward. */
  sshForward: boolean
  default: boolean
}

export interface TemplatesResult {
  account: string
  templates: TemplateInfo[]
}

/** `ie-virsh templates`: the templates the owner's groups allow, as `define --template` finds them. */
export async function listTemplates(ctx: VirshContext): Promise<TemplatesResult> {
  const templates: TemplateInfo[] = []
  for (const name of ctx.limits.templates) {
    // A name an admin allowed but has not installed yet is left out rather than failing the list.
    const template = await findTemplate(name, ctx.templateDirs)
    if (template === undefined) continue
    const isDefault = name === ctx.config.defaultTemplate
    templates.push({name, path: template.path, summary: templateSummary(template), sshForward: usesSshPort(template), default: isDefault})
  }
  return {account: ctx.owner.account, templates}
}

export function describeTemplates(r: TemplatesResult): string {
  if (r.templates.length === 0) return `No templates are installed for ${r.account}; ask an admin.`
  const width = Math.max(...r.templates.map((t) => t.name.length))
  const rows = r.templates.map((t) => `  ${t.name.padEnd(width)}  ${t.default ? '(default) ' : ''}${t.summary}`)
  return ['Templates you may use with: sudo ie-virsh define SLOT --template NAME', ...rows].join('\n')
}
