import {execa} from 'execa'

/** Waits until `ok` holds, checking every 200 ms; fails naming `what` after `ms`. Gives the time it took. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now()
  while (!(await ok())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((f) => setTimeout(f, 200))
  }
  return Date.now() - started
}

/** The processes of `account` whose command line matches `pattern` (pgrep -f), as pgrep prints their pids; empty when none. */
export async function processesOf(account: string, pattern: string): Promise<string> {
  return String((await execa('pgrep', ['-u', account, '-f', pattern], {reject: false})).stdout).trim()
}
