/**
 * Is a guest TCP port listening, as seen from the blade? Directly at an address, a completed
 * connection says yes and a refusal says no. Through a user-mode network forward it is subtler:
 * qemu's slirp accepts the host connection at once and only then connects to the guest; when
 * nothing listens there, it closes the host side within milliseconds (measured: an end after
 * 8 ms, against an SSH banner after ~400 ms under TCG). So through a forward: data, or a
 * connection still open after `graceMs`, means open; a close before that means closed.
 */
import {connect} from 'node:net'

import type {PortState} from '../types.js'
import type {Endpoint} from './domains.js'

export interface ProbeOptions {
  connectTimeoutMs: number
  graceMs: number
  signal?: AbortSignal
}

export function probePort(endpoint: Endpoint, o: ProbeOptions): Promise<PortState> {
  return new Promise((resolve) => {
    const socket = connect({host: endpoint.host, port: endpoint.port})
    let timer: NodeJS.Timeout | undefined
    const done = (state: PortState) => {
      clearTimeout(timer)
      o.signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(state)
    }
    const onAbort = () => done('filtered')
    o.signal?.addEventListener('abort', onAbort, {once: true})
    timer = setTimeout(() => done('filtered'), o.connectTimeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      if (endpoint.via === 'address') return done('open')
      timer = setTimeout(() => done('open'), o.graceMs)
    })
    socket.once('data', () => done('open'))
    socket.once('end', () => done('closed'))
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET' ? 'closed' : 'filtered'))
  })
}
