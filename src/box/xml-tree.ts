import {XMLParser, XMLValidator} from 'fast-xml-parser'

import {badInput} from '../errors.js'

/** An element as fast-xml-parser returns it: attributes under `@name`, text under `#text`. */
export type XmlNode = Record<string, unknown>

/**
 * Parses untrusted XML into a tree keyed by local names (namespace prefixes removed).
 * DOCTYPE and ENTITY declarations are refused before the parser sees the text, and entity
 * processing stays off, so no input can expand into more than it is.
 * `what` names the document in error messages, e.g. "box.ovf".
 */
export function parseUntrustedXml(xml: string, what: string): XmlNode {
  const declaration = /<!\s*ENTITY/i.test(xml) ? 'ENTITY' : /<!\s*DOCTYPE/i.test(xml) ? 'DOCTYPE' : undefined
  if (declaration) {
    throw badInput('OVF_DOCTYPE', `${what} contains a <!${declaration}> declaration, which shien refuses: entity declarations can make a parser read files or expand without limit.`, [
      'Export the VM again from VirtualBox; real OVF exports never contain a DOCTYPE.',
    ])
  }
  const valid = XMLValidator.validate(xml)
  if (valid !== true) {
    throw badInput('OVF_MALFORMED', `${what} is not well-formed XML (line ${valid.err.line}: ${valid.err.msg}).`, [
      'Export the VM again from VirtualBox or "vagrant package".',
    ])
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    removeNSPrefix: true,
    processEntities: false,
    htmlEntities: false,
    parseTagValue: false,
    parseAttributeValue: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
  })
  return parser.parse(xml) as XmlNode
}

/** The children called `name`, as an array whether the element occurred once or many times. */
export function children(node: unknown, name: string): XmlNode[] {
  if (!isNode(node)) return []
  const value = node[name]
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value]
  return list.map((item) => (isNode(item) ? item : {'#text': item}))
}

/** The first child called `name`. */
export function child(node: unknown, name: string): XmlNode | undefined {
  return children(node, name)[0]
}

/** Text content of an element (entities decoded), or undefined when absent or empty. */
export function text(node: unknown): string | undefined {
  const raw = isNode(node) ? node['#text'] : node
  if (raw === undefined || raw === null || raw === '') return undefined
  return decodeEntities(String(raw))
}

/** An attribute by local name, entities decoded. */
export function attr(node: unknown, name: string): string | undefined {
  if (!isNode(node)) return undefined
  const raw = node[`@${name}`]
  return raw === undefined ? undefined : decodeEntities(String(raw))
}

/** Depth-first search for the first element called `name` anywhere below `node`. */
export function findDeep(node: unknown, name: string): XmlNode | undefined {
  if (!isNode(node)) return undefined
  const direct = child(node, name)
  if (direct) return direct
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('@') || key === '#text') continue
    for (const item of Array.isArray(value) ? value : [value]) {
      const found = findDeep(item, name)
      if (found) return found
    }
  }
  return undefined
}

function isNode(value: unknown): value is XmlNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const PREDEFINED: Record<string, string> = {lt: '<', gt: '>', amp: '&', quot: '"', apos: "'"}

/** Only XML's five predefined entities and character references: they cannot expand. */
function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1].toLowerCase() === 'x' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1))
      return code <= 0x10ffff ? String.fromCodePoint(code) : whole
    }
    return PREDEFINED[ref.toLowerCase()] ?? whole
  })
}
