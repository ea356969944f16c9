import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {packageInfo} from '../package-info.js'

/**
 * Vagrant's two published insecure public keys. Public base boxes authorize both for the
 * `vagrant` user; a VM reachable from the network must authorize neither. Matched by key
 * blob (the base64 field), never by whole line, since comments and options vary.
 */
export const VAGRANT_INSECURE_KEYS: readonly {type: string; blob: string}[] = readKeys(join(packageInfo().templatesDir, 'vagrant-insecure-keys.pub'))

/** The keys of an authorized_keys-format file; a file without both is a broken install. */
function readKeys(path: string): {type: string; blob: string}[] {
  const keys = readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [type, blob] = line.split(/\s+/)
      return {type, blob}
    })
  if (keys.length !== 2 || keys.some((k) => !k.type?.startsWith('ssh-') || !k.blob)) {
    throw new Error(`${path} must hold Vagrant's two insecure public keys.`)
  }
  return keys
}

const INSECURE_BLOBS: ReadonlySet<string> = new Set(VAGRANT_INSECURE_KEYS.map((k) => k.blob))

/** True when any whitespace-separated field of an authorized_keys line is an insecure key blob. */
export function isInsecureKeyLine(line: string): boolean {
  return line.trim().split(/\s+/).some((field) => INSECURE_BLOBS.has(field))
}

/** The insecure keys as authorized_keys lines (what a base box ships). */
export function insecureAuthorizedKeys(): string {
  return VAGRANT_INSECURE_KEYS.map((k) => `${k.type} ${k.blob} vagrant insecure public key`).join('\n') + '\n'
}
