import type {VirshContext} from './context.js'
import {escapeXml} from './template.js'

/**
 * A gdb stub as ie-virsh adds it to a domain: qemu's `-gdb unix:SOCKET,server=on,wait=off`.
 * A gdb stub has no authentication, so it is a UNIX socket that qemu (running as the VM's
 * owner) creates in a folder only the owner can enter, never a TCP port that any local user
 * could connect to.
 */
export interface GdbStub {
  socket: string
}

const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'
const BLOCK = /<qemu:commandline>([\s\S]*?)<\/qemu:commandline>\s*/
const ARG = /<qemu:arg\s+value=(['"])(.*?)\1\s*\/>/g
const UNIX = /^unix:(\/[^,]+),server=on,wait=off$/

/** The `value` attributes of the qemu:commandline args, as written (still XML-escaped). */
function argsOf(xml: string): {block?: RegExpExecArray; values: string[]} {
  const block = BLOCK.exec(xml) ?? undefined
  const values = block ? [...block[1].matchAll(ARG)].map((m) => m[2]) : []
  return {block, values}
}

/** The domain's gdb stub, if its XML has one. */
export function gdbStubOf(xml: string): GdbStub | undefined {
  const {values} = argsOf(xml)
  const at = values.indexOf('-gdb')
  const match = at >= 0 ? UNIX.exec(values[at + 1] ?? '') : null
  return match ? {socket: match[1]} : undefined
}

/**
 * The domain XML (as `virsh dumpxml` prints it) with its gdb stub replaced by `stub`, or
 * removed when `stub` is undefined. Only the `-gdb VALUE` pair is touched; the template's own
 * qemu args (the SSH forward) stay as they are.
 */
export function withGdbStub(xml: string, stub: GdbStub | undefined): string {
  const {block, values} = argsOf(xml)
  const kept = values.filter((v, i) => v !== '-gdb' && values[i - 1] !== '-gdb')
  const args = stub ? [...kept, '-gdb', escapeXml(`unix:${stub.socket},server=on,wait=off`)] : kept
  const body = args.length === 0 ? '' : `<qemu:commandline>\n${args.map((v) => `    <qemu:arg value='${v}'/>\n`).join('')}  </qemu:commandline>\n`
  if (block) return xml.slice(0, block.index) + body + xml.slice(block.index + block[0].length)
  if (!stub) return xml
  const withNs = /<domain\b[^>]*\sxmlns:qemu=/.test(xml) ? xml : xml.replace(/<domain\b/, `<domain xmlns:qemu='${QEMU_NS}'`)
  return withNs.replace(/<\/domain>\s*$/, `  ${body}</domain>\n`)
}

/**
 * Takes a gdb stub left from an earlier `debug` out of the domain's definition before a plain
 * start (any `-gdb`, also the TCP stubs of older versions): a plain start has no stub.
 */
export async function dropGdbStub(ctx: VirshContext, name: string): Promise<void> {
  const o = {signal: ctx.signal, inactive: true, withSecrets: true}
  const xml = await ctx.hypervisor.dumpXml(name, o)
  if (argsOf(xml).values.includes('-gdb')) await ctx.hypervisor.define(withGdbStub(xml, undefined), o)
}
