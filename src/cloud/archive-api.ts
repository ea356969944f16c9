import type {Secret} from './secret.js'

/** An archive as shien uses it (the API's `Archive` object, trimmed). */
export interface ArchiveInfo {
  id: string
  name: string
  /** uploading, migrating, available or failed. */
  availability: string
  sizeMB?: number
}

/** Where and as whom to send the image, from `FTPServer` in the API's answers. */
export interface FtpServerInfo {
  hostName: string
  ipAddress?: string
  user: string
  password: Secret
}

export interface NewArchive {
  name: string
  description: string
  tags: string[]
  sizeMB: number
}

/** The archive calls of Sakura Cloud's IaaS API 1.1 that a push needs, in one zone. */
export interface ArchiveApi {
  readonly zone: string
  /** `POST /archive` with `SizeMB`: a blank archive, open for FTPS. */
  createBlank(archive: NewArchive, signal?: AbortSignal): Promise<{archive: ArchiveInfo; ftp: FtpServerInfo}>
  /** `PUT /archive/{id}/ftp` with `ChangePassword: true`: fresh FTP credentials. */
  reopenFtp(id: string, signal?: AbortSignal): Promise<FtpServerInfo>
  /** `DELETE /archive/{id}/ftp`: the upload is complete; Sakura Cloud checks the image. */
  closeFtp(id: string, signal?: AbortSignal): Promise<void>
  /** `GET /archive/{id}`. */
  get(id: string, signal?: AbortSignal): Promise<ArchiveInfo>
  /** `DELETE /archive/{id}`. */
  delete(id: string, signal?: AbortSignal): Promise<void>
}
