/** A time limit that can be paused (while a person answers) and stopped. */
export function handshakeClock(ms: number, onTimeout: () => void) {
  let left = ms
  let started = Date.now()
  let timer: NodeJS.Timeout | undefined = setTimeout(onTimeout, ms)
  return {
    pause() {
      if (timer === undefined) return
      clearTimeout(timer)
      timer = undefined
      left -= Date.now() - started
    },
    resume() {
      if (timer !== undefined || left < 0) return
      started = Date.now()
      timer = setTimeout(onTimeout, left)
    },
    stop() {
      clearTimeout(timer)
      timer = undefined
      left = -1
    },
  }
}
