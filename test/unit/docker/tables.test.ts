import {describe, expect, it} from 'vitest'

import {describeImages} from '../../../src/docker/images.js'
import {describePs} from '../../../src/docker/lifecycle.js'

describe("ie-docker's tables for people", () => {
  it('ps: a row per container, columns two spaces apart, no trailing spaces', () => {
    const text = describePs({
      containers: [
        {name: 'web', container: 'e195701-web', image: 'localhost/e195701/site:latest', status: 'running', ports: [{host: 24000}, {host: 24001}]},
        {name: 'db-backup', container: 'e195701-db-backup', image: 'docker.io/library/postgres:16', status: 'exited', ports: []},
      ],
    })
    expect(text.split('\n')).toEqual([
      'NAME       IMAGE                          STATUS   PORTS',
      'web        localhost/e195701/site:latest  running  24000,24001',
      'db-backup  docker.io/library/postgres:16  exited',
    ])
    expect(describePs({containers: []})).toBe('You have no containers.')
  })

  it('images: your own and the shared ones, marked', () => {
    const text = describeImages({
      images: [
        {name: 'site:latest', image: 'localhost/e195701/site:latest', id: '3f1c9a0b7d2e4f5a6b7c', size: '12.3MB', shared: false},
        {name: 'docker.io/library/debian:12', image: 'docker.io/library/debian:12', id: 'a0b1c2d3e4f5a6b7c8d9', size: '139MB', shared: true},
      ],
    })
    expect(text.split('\n')).toEqual([
      'NAME                         ID            SIZE',
      'site:latest                  3f1c9a0b7d2e  12.3MB',
      'docker.io/library/debian:12  a0b1c2d3e4f5  139MB   (shared)',
    ])
    expect(describeImages({images: []})).toBe('No images you may run.')
  })
})
