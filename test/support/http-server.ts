// A static file server on a loopback port, as a blade's web server serves the published boxes:
// GET and HEAD, Content-Type by extension (catalogs as application/json, which Vagrant needs),
// and a log of what was asked and how much of it was sent.
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join, normalize, sep} from 'node:path'

export interface ServedRequest {
  method: string
  path: string
  status: number
  /** Bytes of the body written before the response ended or the client went away. */
  bytesSent: number
  /** Whether the whole body was sent. */
  complete: boolean
}

export interface StaticServer {
  /** http://127.0.0.1:PORT, without a trailing slash. */
  url: string
  requests: ServedRequest[]
  /** Serve .json with this Content-Type instead (to reproduce servers that get it wrong). */
  jsonType: string
  close(): Promise<void>
}

const TYPES: Record<string, string> = {'.json': 'application/json', '.box': 'application/octet-stream'}

/** Serves `root` on 127.0.0.1 at a free port until `close()`. */
export async function serveDirectory(root: string): Promise<StaticServer> {
  const requests: ServedRequest[] = []
  const state = {jsonType: 'application/json'}
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    const record: ServedRequest = {method: req.method ?? '', path, status: 0, bytesSent: 0, complete: false}
    requests.push(record)
    serveFile(normalize(join(root, path)), root, state.jsonType, record, req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get jsonType() {
      return state.jsonType
    },
    set jsonType(value: string) {
      state.jsonType = value
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

function serveFile(file: string, root: string, jsonType: string, record: ServedRequest, req: IncomingMessage, res: ServerResponse): void {
  const fail = (status: number) => {
    record.status = status
    res.writeHead(status).end()
  }
  if (!file.startsWith(root + sep)) return fail(403)
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405)
  stat(file).then((info) => {
    if (!info.isFile()) return fail(404)
    const ext = /\.[a-z0-9]+$/i.exec(file)?.[0] ?? ''
    record.status = 200
    res.writeHead(200, {'content-type': ext === '.json' ? jsonType : TYPES[ext] ?? 'application/octet-stream', 'content-length': info.size})
    if (req.method === 'HEAD') {
      record.complete = true
      return res.end()
    }
    const body = createReadStream(file)
    body.on('data', (chunk) => (record.bytesSent += chunk.length))
    res.on('finish', () => (record.complete = true))
    res.on('close', () => body.destroy())
    body.pipe(res)
  }, () => fail(404))
}
