/**
 * The public half of a private key file, as an SSH key blob, without asking for a passphrase:
 * OpenSSH's own format stores the public key unencrypted in its header, and unencrypted PEM keys
 * (Vagrant's insecure RSA key is one) give it through node's crypto. Encrypted PEM gives nothing.
 */
import {createPrivateKey, createPublicKey} from 'node:crypto'

const OPENSSH = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/
const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1')

/** True when the text looks like any private key file (for reporting, even if unreadable). */
export function looksLikePrivateKey(text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)
}

export function publicBlobOfPrivateKey(text: string): Buffer | undefined {
  const openssh = OPENSSH.exec(text)
  if (openssh) return opensshPublic(Buffer.from(openssh[1].replace(/\s+/g, ''), 'base64'))
  try {
    return pemPublic(text)
  } catch {
    return undefined
  }
}

/** openssh-key-v1: magic, cipher, kdf, kdf options, key count, then the first public key blob. */
function opensshPublic(data: Buffer): Buffer | undefined {
  if (!data.subarray(0, MAGIC.length).equals(MAGIC)) return undefined
  let at = MAGIC.length
  const string = (): Buffer | undefined => {
    if (at + 4 > data.length) return undefined
    const length = data.readUInt32BE(at)
    if (at + 4 + length > data.length) return undefined
    const value = data.subarray(at + 4, at + 4 + length)
    at += 4 + length
    return value
  }
  for (let i = 0; i < 3; i++) if (string() === undefined) return undefined
  if (at + 4 > data.length || data.readUInt32BE(at) < 1) return undefined
  at += 4
  return string()
}

function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** An SSH mpint: big-endian, a leading zero byte when the top bit is set. */
function mpint(unsigned: Buffer): Buffer {
  let start = 0
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++
  const trimmed = unsigned.subarray(start)
  return sshString(trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

const CURVES: Record<string, string> = {'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521'}

function pemPublic(text: string): Buffer | undefined {
  const jwk = createPublicKey(createPrivateKey({key: text, format: 'pem'})).export({format: 'jwk'})
  const b64 = (s?: string) => Buffer.from(s ?? '', 'base64url')
  if (jwk.kty === 'RSA') return Buffer.concat([sshString('ssh-rsa'), mpint(b64(jwk.e)), mpint(b64(jwk.n))])
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return Buffer.concat([sshString('ssh-ed25519'), sshString(b64(jwk.x))])
  const curve = CURVES[jwk.crv ?? '']
  if (jwk.kty === 'EC' && curve) {
    const point = Buffer.concat([Buffer.from([4]), b64(jwk.x), b64(jwk.y)])
    return Buffer.concat([sshString(`ecdsa-sha2-${curve}`), sshString(curve), sshString(point)])
  }
  return undefined
}
