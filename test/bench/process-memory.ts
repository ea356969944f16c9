// Memory of a process tree, sampled from /proc: for the capacity bench, which needs the peak RSS
// of each appliance's qemu (VmHWM, which the kernel keeps) and the peak of the tree's summed RSS
// (what N pushes at once take from the blade).
import {readdirSync, readFileSync} from 'node:fs'

/** Peak figures of one sampled tree, in KiB. */
export interface TreePeak {
  /** The largest sum of VmRSS over the tree's processes seen in one sample. */
  sumRssKiB: number
  /** Per command name, the largest VmHWM any process of that name reached. */
  hwmByCommand: Record<string, number>
}

function readProc(pid: string, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return undefined
  }
}

/** Every process below `root` (not `root` itself), from the ppid field of /proc/PID/stat. */
export function descendants(root: number): string[] {
  const children = new Map<string, string[]>()
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    const stat = readProc(pid, 'stat')
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    const ppid = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[1]
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), pid])
  }
  const out: string[] = []
  const walk = (pid: string) => {
    for (const child of children.get(pid) ?? []) {
      out.push(child)
      walk(child)
    }
  }
  walk(String(root))
  return out
}

function kib(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return m ? Number(m[1]) : 0
}

/** Samples the tree below `root` every `everyMs` until stopped; `stop()` returns the peaks. */
export function sampleTree(root: number, everyMs = 200): {stop: () => TreePeak} {
  const peak: TreePeak = {sumRssKiB: 0, hwmByCommand: {}}
  const sample = () => {
    let sum = 0
    for (const pid of descendants(root)) {
      const status = readProc(pid, 'status')
      if (!status) continue
      const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?'
      sum += kib(status, 'VmRSS')
      peak.hwmByCommand[name] = Math.max(peak.hwmByCommand[name] ?? 0, kib(status, 'VmHWM'))
    }
    peak.sumRssKiB = Math.max(peak.sumRssKiB, sum)
  }
  const timer = setInterval(sample, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      sample()
      return peak
    },
  }
}

export const mib = (kiB: number) => Math.round(kiB / 1024)
