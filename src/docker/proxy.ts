import {mkdir, rename, writeFile} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {ShienError} from '../errors.js'
import type {DockerSettings} from '../config/blade-config.js'
import {firstErrorLine, runTool} from '../process/run.js'
import type {PortHolder} from '../privileged/ports.js'

/**
 * The reverse proxy's entries (the thesis' figure 4.5): `<account>-<name>.<domain>` reaches
 * the container's first published port. Rebuilt whole from the port pool each time, so the
 * file can never drift from the ports actually handed out.
 */
export function renderProxy(holders: readonly PortHolder[], host: string, s: Pick<DockerSettings, 'listenAddress' | 'proxy'>): string {
  const first = new Map<string, number>()
  for (const h of holders) {
    // Only this blade's containers: their ports listen on this blade.
    if (h.host !== host) continue
    first.set(h.owner, Math.min(h.port, first.get(h.owner) ?? h.port))
  }
  const blocks = [...first].sort(([a], [b]) => a.localeCompare(b)).map(([container, port]) => [
    'server {',
    '    listen 80;',
    `    server_name ${container}.${s.proxy.domain};`,
    '    location / {',
    `        proxy_pass http://${s.listenAddress}:${port};`,
    '        proxy_set_header Host $host;',
    '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '    }',
    '}',
  ].join('\n'))
  return ['# Written by ie-docker on ' + host + ': one server per container with a published port. Edits are overwritten.', ...blocks, ''].join('\n')
}

/** Replaces the include file atomically, then runs the admin's reload command, if any. */
export async function writeProxy(text: string, s: Pick<DockerSettings, 'proxy'>, o: {signal: AbortSignal}): Promise<void> {
  const file = s.proxy.includeFile
  await mkdir(dirname(file), {recursive: true, mode: 0o755})
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}`)
  await writeFile(tmp, text, {mode: 0o644})
  await rename(tmp, file)
  if (s.proxy.reload.length === 0) return
  const [command, ...args] = s.proxy.reload
  const r = await runTool(command, args, {signal: o.signal, timeoutMs: 30_000})
  if (r.exitCode !== 0) {
    throw new ShienError(`The reverse proxy did not reload (${command}): ${firstErrorLine(r.stderr)}.`, {
      code: 'PROXY_RELOAD',
      exit: 'remote',
      suggestions: ['Your container runs; its web address works once an admin reloads the proxy.'],
    })
  }
}
