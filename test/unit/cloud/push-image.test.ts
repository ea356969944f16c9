import {execFileSync} from 'node:child_process'
import {mkdtempSync, readdirSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import type {ArchiveApi, FtpServerInfo} from '../../../src/cloud/archive-api.js'
import {UploadError, type Uploader} from '../../../src/cloud/ftps-upload.js'
import {type CloudJob, pushImage} from '../../../src/cloud/push-image.js'
import {Secret} from '../../../src/cloud/secret.js'
import {DEFAULT_SETTINGS} from '../../../src/cloud/settings.js'
import type {PipelineEvent} from '../../../src/pipeline/events.js'

// The push's steps and cleanup with a fake API and a fake uploader (the real ones have their
// own tests); the image is a real file.
const dir = mkdtempSync(join(tmpdir(), 'push-image-'))
const image = join(dir, 'os101.img')
writeFileSync(image, Buffer.alloc(3 << 20, 7))

const server = (n: number): FtpServerInfo => ({hostName: 'ftp.test', user: 'u', password: new Secret(`pw${n}`)})

function fakeApi(opts: {availability?: string[]; deleteFails?: boolean} = {}) {
  const calls: string[] = []
  let opened = 1
  const states = [...(opts.availability ?? ['migrating', 'available'])]
  const api: ArchiveApi = {
    zone: 'is1a',
    createBlank: async (a) => {
      calls.push(`create ${a.name} ${a.sizeMB}`)
      return {archive: {id: '42', name: a.name, availability: 'uploading'}, ftp: server(1)}
    },
    reopenFtp: async (id) => (calls.push(`reopen ${id}`), server(++opened)),
    closeFtp: async (id) => void calls.push(`close ${id}`),
    get: async (id) => (calls.push(`get ${id}`), {id, name: 'os101', availability: states.shift() ?? 'available'}),
    delete: async (id, signal) => {
      calls.push(`delete ${id} aborted=${signal?.aborted}`)
      if (opts.deleteFails) throw new Error('423 locked')
    },
  }
  return {api, calls}
}

const job = (over: Partial<CloudJob> = {}): CloudJob => ({
  imagePath: image,
  workDir: dir,
  archive: {name: 'os101', description: 'd', tags: ['shien']},
  keepOnFailure: false,
  settings: {...DEFAULT_SETTINGS, pollMs: 1, timeoutMs: 5000},
  ...over,
})

/** An uploader that fails with the given errors first, then succeeds; it records passwords. */
function uploader(failures: UploadError[], passwords: string[] = []): Uploader {
  return async (_file, size, target, o) => {
    passwords.push(target.server.password.reveal())
    o.onBytes?.(size)
    const failure = failures.shift()
    if (failure) throw failure
    return {bytes: size, ms: 10, reply: '226 Transfer complete'}
  }
}

describe('pushImage', () => {
  it('creates, uploads, closes FTP and waits; progress is reported as upload events', async () => {
    const {api, calls} = fakeApi()
    const events: PipelineEvent[] = []
    const result = await pushImage(job(), {api, signal: new AbortController().signal, emit: (e) => events.push(e), upload: uploader([])})
    expect(calls).toEqual(['create os101 20480', 'close 42', 'get 42', 'get 42'])
    expect(result).toMatchObject({archive: {id: '42', zone: 'is1a', sizeGiB: 20, availability: 'available'}, image: {format: 'raw', sentBytes: 3 << 20}, upload: {attempts: 1}})
    expect(events).toContainEqual({type: 'progress', stage: 'upload', bytes: 3 << 20, total: 3 << 20})
    expect(result.timings.map((t) => t.step)).toEqual(['create', 'upload', 'wait'])
  })

  it('sends again with a fresh FTP password when the transfer breaks', async () => {
    const {api, calls} = fakeApi()
    const passwords: string[] = []
    const broke = new UploadError('read ECONNRESET', true, 'transfer')
    const result = await pushImage(job(), {api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([broke], passwords)})
    expect(passwords).toEqual(['pw1', 'pw2'])
    expect(calls.slice(0, 3)).toEqual(['create os101 20480', 'reopen 42', 'close 42'])
    expect(result.upload.attempts).toBe(2)
  })

  it('gives up after the allowed attempts and deletes the archive', async () => {
    const {api, calls} = fakeApi()
    const fail = () => new UploadError('the FTP server refused the login (530 Login incorrect.)', true, 'login')
    const run = pushImage(job(), {api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([fail(), fail(), fail()])})
    await expect(run).rejects.toMatchObject({code: 'CLOUD_UPLOAD_FAILED', exitCode: 5, message: expect.stringMatching(/\(3 tries, each with a fresh FTP password\).*Archive 42 "os101" in is1a was deleted\./)})
    expect(calls).toEqual(['create os101 20480', 'reopen 42', 'reopen 42', 'delete 42 aborted=false'])
  })

  it('does not retry a refused certificate', async () => {
    const {api, calls} = fakeApi()
    const tls = new UploadError('the FTPS server\'s certificate was refused', false, 'tls')
    await expect(pushImage(job(), {api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([tls])})).rejects.toMatchObject({code: 'CLOUD_FTPS_TLS', exitCode: 4})
    expect(calls).toEqual(['create os101 20480', 'delete 42 aborted=false'])
  })

  it('on cancel, deletes the archive on its own deadline and says so (exit 130)', async () => {
    const {api, calls} = fakeApi()
    const abort = new AbortController()
    const hang: Uploader = (_f, _s, _t, o) =>
      new Promise((_resolve, reject) => {
        o.signal?.addEventListener('abort', () => reject(o.signal!.reason))
        abort.abort(new Error('interrupted'))
      })
    await expect(pushImage(job(), {api, signal: abort.signal, emit: () => undefined, upload: hang})).rejects.toMatchObject({
      code: 'CLOUD_CANCELLED',
      exitCode: 130,
      message: 'Interrupted. Archive 42 "os101" in is1a was deleted.',
    })
    expect(calls.at(-1)).toBe('delete 42 aborted=false')
  })

  it('on cancel before the archive exists, says nothing was created', async () => {
    const {api, calls} = fakeApi()
    const qcow2 = join(dir, 'os101.qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '64M'])
    const run = pushImage(job({imagePath: qcow2}), {api, signal: AbortSignal.abort(new Error('interrupted')), emit: () => undefined})
    await expect(run).rejects.toMatchObject({code: 'CLOUD_CANCELLED', exitCode: 130, message: 'Interrupted before an archive was created; nothing was left in Sakura Cloud.'})
    expect(calls).toEqual([])
    expect(readdirSync(dir).filter((f) => f.includes('shien-cloud'))).toEqual([])
  })

  it('deletes an archive whose creation was under way when Ctrl-C came', async () => {
    const {api, calls} = fakeApi()
    const abort = new AbortController()
    const create = api.createBlank.bind(api)
    api.createBlank = async (a, signal) => {
      abort.abort(new Error('interrupted'))
      return create(a, signal)
    }
    await expect(pushImage(job(), {api, signal: abort.signal, emit: () => undefined, upload: uploader([])})).rejects.toMatchObject({code: 'CLOUD_CANCELLED'})
    expect(calls).toEqual(['create os101 20480', 'delete 42 aborted=false'])
  })

  it('leaves the archive with keepOnFailure, and says when it could not delete it', async () => {
    const kept = fakeApi({availability: ['failed']})
    const run = pushImage(job({keepOnFailure: true}), {api: kept.api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([])})
    await expect(run).rejects.toMatchObject({code: 'CLOUD_ARCHIVE_FAILED', message: expect.stringContaining('was left as it is (--keep-on-failure).')})
    expect(kept.calls.some((c) => c.startsWith('delete'))).toBe(false)
    const stuck = fakeApi({availability: ['failed'], deleteFails: true})
    const again = pushImage(job(), {api: stuck.api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([])})
    await expect(again).rejects.toMatchObject({
      message: expect.stringContaining('Archive 42 "os101" in is1a could not be deleted (423 locked).'),
      suggestions: [expect.any(String), expect.stringMatching(/Delete it in the control panel/)],
    })
  })

  it('refuses a disk larger than 1024 GiB before any API call', async () => {
    const huge = join(dir, 'huge.img')
    writeFileSync(huge, '')
    truncateSync(huge, 1025 * 2 ** 30)
    const {api, calls} = fakeApi()
    await expect(pushImage(job({imagePath: huge}), {api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([])})).rejects.toMatchObject({code: 'CLOUD_IMAGE_TOO_LARGE', exitCode: 3})
    expect(calls).toEqual([])
  })

  it('refuses a VMDK rather than sending it as raw', async () => {
    const vmdk = join(dir, 'disk.vmdk')
    writeFileSync(vmdk, Buffer.concat([Buffer.from('KDMV'), Buffer.alloc(4096)]))
    const {api, calls} = fakeApi()
    await expect(pushImage(job({imagePath: vmdk}), {api, signal: new AbortController().signal, emit: () => undefined})).rejects.toMatchObject({code: 'CLOUD_IMAGE_FORMAT', exitCode: 3})
    expect(calls).toEqual([])
  })
})

describe('the stages of a cloud push, undone in reverse', () => {
  /** A qcow2 in a folder of its own, so the raw file its conversion makes can be watched. */
  function qcow2Job(): {job: CloudJob; raws: () => string[]} {
    const work = mkdtempSync(join(dir, 'stages-'))
    const path = join(work, 'os101.qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M'])
    return {job: job({imagePath: path, workDir: work}), raws: () => readdirSync(work).filter((f) => f.endsWith('.raw'))}
  }

  /** The fake API, recording whether the converted raw file was still there when the archive was deleted. */
  function watchingApi(raws: () => string[], opts: {availability?: string[]} = {}) {
    const fake = fakeApi(opts)
    const remove = fake.api.delete
    fake.api.delete = async (id, signal) => {
      fake.calls.push(`raw files: ${raws().length}`)
      return remove(id, signal)
    }
    return fake
  }

  it('on a failed upload, deletes the archive first and the converted raw file after it', async () => {
    const {job: qjob, raws} = qcow2Job()
    const {api, calls} = watchingApi(raws)
    const tls = new UploadError('the FTPS server\'s certificate was refused', false, 'tls')
    const events: PipelineEvent[] = []
    const run = pushImage(qjob, {api, signal: new AbortController().signal, emit: (e) => events.push(e), upload: uploader([tls])})
    await expect(run).rejects.toMatchObject({code: 'CLOUD_FTPS_TLS', message: expect.stringMatching(/Archive 42 "os101" in is1a was deleted\.$/)})
    expect(calls).toEqual(['create os101 20480', 'raw files: 1', 'delete 42 aborted=false'])
    expect(raws()).toEqual([])
    expect(events.filter((e) => e.type === 'stage:start').map((e) => e.stage)).toEqual(['convert', 'create', 'upload'])
  })

  it('when cancelled while waiting, deletes the archive, then the raw file, and says it was interrupted', async () => {
    const {job: qjob, raws} = qcow2Job()
    const {api, calls} = watchingApi(raws, {availability: ['migrating', 'migrating', 'migrating']})
    const abort = new AbortController()
    const get = api.get.bind(api)
    api.get = async (id, signal) => {
      abort.abort(new Error('interrupted'))
      return get(id, signal)
    }
    const run = pushImage(qjob, {api, signal: abort.signal, emit: () => undefined, upload: uploader([])})
    await expect(run).rejects.toMatchObject({code: 'CLOUD_CANCELLED', exitCode: 130, message: 'Interrupted. Archive 42 "os101" in is1a was deleted.'})
    expect(calls).toEqual(['create os101 20480', 'close 42', 'get 42', 'raw files: 1', 'delete 42 aborted=false'])
    expect(raws()).toEqual([])
  })

  it('removes the raw file of a good push too, and reports the steps it timed', async () => {
    const {job: qjob, raws} = qcow2Job()
    const {api} = fakeApi()
    const result = await pushImage(qjob, {api, signal: new AbortController().signal, emit: () => undefined, upload: uploader([])})
    expect(result.timings.map((t) => t.step)).toEqual(['convert', 'create', 'upload', 'wait'])
    expect(raws()).toEqual([])
  })
})
