import { debuglog } from 'node:util'

/** `NODE_DEBUG=oniocache` lines: one logger for the whole library. @internal */
export const debug = debuglog('oniocache')
