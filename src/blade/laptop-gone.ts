import type {Readable} from 'node:stream'

/**
 * Aborts `abort` when the step's stdin ends: the laptop never closes a step's stdin while it
 * waits for it (a step that reads stdin opts out), so its end is the SSH channel's. When the
 * laptop dies, the network drops or the student's sshd session is killed, sshd closes the
 * channel and the step stops as on Ctrl-C, its children (qemu-img, the libguestfs appliance)
 * and queue place with it, and removes what it half made. Without this it would run to the end
 * alone: sshd signals no process of a session without a pty.
 */
export function abortWhenInputEnds(input: Readable & {isTTY?: boolean}, abort: AbortController): void {
  if (input.isTTY) return
  const gone = () => abort.abort(new Error('the connection to the laptop was lost'))
  input.once('end', gone)
  input.once('error', gone)
  // What comes is dropped (the laptop sends nothing), and the stream must flow to see its end.
  input.on('data', () => undefined)
  input.resume()
  // Watching it must not keep the step alive once its work is done.
  ;(input as {unref?: () => void}).unref?.()
}
