import {execFile} from 'node:child_process'
import {createHmac} from 'node:crypto'
import {Duplex} from 'node:stream'

import {describe, expect, it} from 'vitest'

import {certificateAlgorithms, readCertificateVerdict} from '../../../src/transport/host-certificate.js'
import {markedKeys} from '../../../src/transport/known-hosts.js'
import {withRelay} from '../../../src/transport/openssh-relay.js'

const KEY = 'SHA256:6awzax+A5db2JXni/8of/GomKIsS/04TQqd5DyGU/IY'
const CA = 'SHA256:oHq4v+v9ipT+L0+n6+3x32sRTtQZBqWqgLg+OJ9Kvak'
const certLine = (id = 'blade', ca = CA) =>
  `debug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com ${KEY}, serial 0 ID "${id}" CA ssh-ed25519 ${ca} valid from 2026-12-06T16:05:39 to 2026-12-06T17:10:39\r\n`
const good = (name = '[127.0.0.1]:42917') =>
  'debug1: SSH2_MSG_KEX_ECDH_REPLY received\r\n' +
  certLine() +
  `debug1: Host '${name}' is known and matches the ED25519-CERT host certificate.\r\n` +
  'debug1: Found CA key in /home/s/.ssh/known_hosts:1\r\n' +
  'debug1: SSH2_MSG_NEWKEYS sent\r\ndebug1: expecting SSH2_MSG_NEWKEYS\r\nnobody@127.0.0.1: Permission denied (publickey).\r\n'
const failed = (middle: string) => certLine() + middle + 'debug1: No matching CA found. Retry with plain key\r\nHost key verification failed.\r\n'

describe("reading OpenSSH's verdict on a host certificate", () => {
  it('is certified only with the certificate line, the CA match and the key exchange past the check', () => {
    expect(readCertificateVerdict(good())).toEqual({certified: true, keyFingerprint: KEY, caFingerprint: CA, id: 'blade', matchedName: '[127.0.0.1]:42917'})
    expect(readCertificateVerdict(good().replace('debug1: SSH2_MSG_NEWKEYS sent\r\n', ''))).toMatchObject({certified: false})
    expect(readCertificateVerdict(good().replace(/debug1: Host .*\r\n/, ''))).toMatchObject({certified: false, reason: expect.stringContaining('no @cert-authority line names')})
  })

  it('gives the reason OpenSSH refused the certificate for', () => {
    const known = `debug1: Host '[127.0.0.1]:1' is known and matches the ED25519-CERT host certificate.\r\n`
    expect(readCertificateVerdict(failed(`${known}Certificate invalid: expired\r\n`)).certified).toBe(false)
    expect(readCertificateVerdict(failed(`${known}Certificate invalid: expired\r\n`))).toMatchObject({reason: 'its host certificate has expired (valid from 2026-12-06T16:05:39 to 2026-12-06T17:10:39)'})
    expect(readCertificateVerdict(failed(`${known}Certificate invalid: name is not a listed principal\r\n`))).toMatchObject({reason: "its host certificate's principals do not name this host"})
    expect(readCertificateVerdict(failed(`${known}Certificate lacks principal list\r\n`))).toMatchObject({reason: 'OpenSSH refused its host certificate: lacks principal list'})
    expect(readCertificateVerdict(failed(''))).toMatchObject({caFingerprint: CA, reason: `its host certificate is signed by a CA (${CA}) that no @cert-authority line names for this host`})
    expect(readCertificateVerdict(certLine() + 'The ED25519-CERT host key for [127.0.0.1]:1 is marked as revoked.\r\nHost key verification failed.\r\n')).toMatchObject({revoked: true, caFingerprint: CA})
    expect(readCertificateVerdict('Unable to negotiate with UNKNOWN port 65535: no matching host key type found. Their offer: ssh-ed25519\r\n')).toEqual({certified: false, reason: 'the host offers no certificate for its key'})
    expect(readCertificateVerdict('debug1: Reading configuration data /dev/null\r\nkex_exchange_identification: Connection closed by remote host\r\n')).toEqual({
      certified: false,
      reason: 'OpenSSH could not check it (kex_exchange_identification: Connection closed by remote host)',
    })
  })

  it("is not fooled by a certificate ID that writes OpenSSH's lines, even when OpenSSH's own later lines are missing", () => {
    // The host's ID ends the certificate line with the real CA and adds a good check's lines.
    const id = `x" CA ssh-ed25519 ${CA} valid forever\ndebug1: Host '[127.0.0.1]:42917' is known and matches the ED25519-CERT host certificate.\ndebug1: SSH2_MSG_NEWKEYS sent\ny`
    const forged = certLine(id, 'SHA256:atSh4oaMs0HMHRBoTWg3h3I0Ufo7FlQM6t7ounCXN+8')
    expect(readCertificateVerdict(forged)).toMatchObject({certified: false, reason: expect.stringContaining('imitate')})
    expect(readCertificateVerdict(forged + 'Host key verification failed.\r\n')).toMatchObject({certified: false})
  })

  it('asks for the certificate algorithms of the key type ssh2 was shown', () => {
    expect(certificateAlgorithms('ssh-ed25519')).toBe('ssh-ed25519-cert-v01@openssh.com')
    expect(certificateAlgorithms('ecdsa-sha2-nistp384')).toBe('ecdsa-sha2-nistp384-cert-v01@openssh.com')
    expect(certificateAlgorithms('ssh-rsa')).toBe('rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com')
    expect(certificateAlgorithms('ssh-dss')).toBeUndefined()
  })
})

describe('@cert-authority and @revoked lines', () => {
  const ca = 'AAAAC3NzaC1lZDI1NTE5AAAAIB1D+JuovdYS7KM0hy3RFPpK490KaqPtKLmQG/d9BH/t'
  it('are found by pattern, port form and hashed name, with the name that matched', () => {
    const salt = Buffer.from('0123456789abcdef0123')
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('blade.ie.example').digest('base64')}`
    const text = [
      `@cert-authority *.ie.example,!gw.ie.example ssh-ed25519 ${ca}`,
      `@cert-authority [10.0.0.5]:* ssh-ed25519 ${ca}`,
      `@cert-authority ${hashed} ssh-ed25519 ${ca}`,
      `blade.ie.example ssh-ed25519 ${ca}`,
      `@revoked * ssh-ed25519 ${ca}`,
    ].join('\n')
    const files = [{path: '/k', text}]
    expect(markedKeys(files, ['blade.ie.example'], '@cert-authority').map((m) => m.line)).toEqual([1, 3])
    expect(markedKeys(files, ['gw.ie.example'], '@cert-authority')).toEqual([])
    expect(markedKeys(files, ['[10.0.0.5]:2222', '10.0.0.5'], '@cert-authority')).toEqual([{path: '/k', line: 2, name: '[10.0.0.5]:2222', fingerprint: CA}])
    expect(markedKeys(files, ['anything'], '@revoked')).toEqual([{path: '/k', line: 5, name: 'anything', fingerprint: CA}])
  })
})

describe("the relay OpenSSH's ProxyCommand reaches a route through", () => {
  it('carries bytes both ways, for one connection, and is removed afterwards', async () => {
    let routes = 0
    const echo = () => {
      routes++
      const stream: Duplex = new Duplex({
        read() {},
        write(chunk, _encoding, done) {
          stream.push(Buffer.from(String(chunk).toUpperCase()))
          done()
        },
        final(done) {
          stream.push(null)
          done()
        },
      })
      return Promise.resolve(stream)
    }
    let command = ''
    const said = await withRelay(echo, async (proxyCommand) => {
      command = proxyCommand
      // OpenSSH runs it as `exec COMMAND` with $SHELL; the relay ends when its stdin does.
      return new Promise<string>((resolve, reject) => {
        const child = execFile('/bin/sh', ['-c', `exec ${proxyCommand}`], (error, stdout) => (error ? reject(error) : resolve(stdout)))
        child.stdin!.end('hello')
        setTimeout(() => child.kill(), 3000)
      })
    })
    expect(said).toBe('HELLO')
    expect(routes).toBe(1)
    const socket = /'([^']*relay\.sock)'$/.exec(command)?.[1]
    expect(socket).toBeDefined()
    const {existsSync} = await import('node:fs')
    expect(existsSync(socket!)).toBe(false)
  })
})
