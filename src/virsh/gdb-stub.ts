import type {VirshContext} from './context.js'
import {escapeXml} from './template.js'

/** A gdb stub as ie-virsh adds it to a domain: qemu's `-gdb tcp:ADDRESS:PORT`. */
export interface GdbStub {
  address: string
  port: number
}

const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0'
const BLOCK = /<qemu:commandline>([\s\S]*?)<\/qemu:commandline>\s*/
const ARG = /<qemu:arg\s+value=(['"])(.*?)\1\s*\/>/g
const TCP = /^tcp:\[?([0-9a-fA-F:.]+)\]?:(\d{1,5})$/

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
  const match = at >= 0 ? TCP.exec(values[at + 1] ?? '') : null
  return match ? {address: match[1], port: Number(match[2])} : undefined
}

/**
 * The domain XML (as `virsh dumpxml` prints it) with its gdb stub replaced by `stub`, or
 * removed when `stub` is undefined. Only the `-gdb VALUE` pair is touched; the template's own
 * qemu args (the SSH forward) stay as they are.
 */
export function withGdbStub(xml: string, stub: GdbStub | undefined): string {
  const {block, values} = argsOf(xml)
  const kept = values.filter((v, i) => v !== '-gdb' && values[i - 1] !== '-gdb')
  const host = stub?.address.includes(':') ? `[${stub.address}]` : stub?.address
  const args = stub ? [...kept, '-gdb', escapeXml(`tcp:${host}:${stub.port}`)] : kept
  const body = args.length === 0 ? '' : `<qemu:commandline>\n${args.map((v) => `    <qemu:arg value='${v}'/>\n`).join('')}  </qemu:commandline>\n`
  if (block) return xml.slice(0, block.index) + body + xml.slice(block.index + block[0].length)
  if (!stub) return xml
  const withNs = /<domain\b[^>]*\sxmlns:qemu=/.test(xml) ? xml : xml.replace(/<domain\b/, `<domain xmlns:qemu='${QEMU_NS}'`)
  return withNs.replace(/<\/domain>\s*$/, `  ${body}</domain>\n`)
}

/**
 * Takes a gdb stub left from an earlier `debug` out of the domain's definition before a plain
 * start: its port went back to the pool when that VM stopped and may belong to another VM now.
 */
export async function dropGdbStub(ctx: VirshContext, name: string): Promise<void> {
  const o = {signal: ctx.signal, inactive: true, withSecrets: true}
  const xml = await ctx.hypervisor.dumpXml(name, o)
  if (gdbStubOf(xml) !== undefined) await ctx.hypervisor.define(withGdbStub(xml, undefined), o)
}
