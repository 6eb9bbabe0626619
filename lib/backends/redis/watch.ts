/**
 * A connection of its own that follows changes (server-assisted invalidation, or a
 * pub/sub channel) and says when its stream is lost and when it is live again: after
 * every (re)connection it is armed first (`CLIENT TRACKING …`; a subscription is
 * restored by the client before it is ready) and only then live.
 */
import type { InvalidationListener, StopListening } from '../../core/invalidation.js'
import { debug } from '../../util/debug.js'

/** What this module uses of a node-redis client. */
export interface FollowerClient {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  close(): Promise<unknown>
  destroy(): void
  on(event: string, listener: (...args: never[]) => void): unknown
  off(event: string, listener: (...args: never[]) => void): unknown
}

/**
 * Connects `client` and keeps `listener` told: `lost` once per interruption (an
 * error of the connection, or an arming that failed), `live` once armed after each
 * (re)connection. Resolves at once, to the function that stops following; a server
 * that is down is retried in the background, and `live` comes when it is back.
 */
export function follow<C extends FollowerClient>(
  client: C,
  arm: (client: C) => Promise<void>,
  listener: InvalidationListener,
  label: string,
): Promise<StopListening> {
  let generation = 0
  /** Between a loss (or the start) and the next `live`. */
  let down = true
  let told = false
  let stopped = false
  const lose = (error: unknown): void => {
    generation++
    if (stopped || (down && told)) return
    debug('[%s] invalidation stream lost: %s', label, error instanceof Error ? error.message : String(error))
    down = told = true
    listener.lost(error)
  }
  const onError = (error: Error): void => lose(error)
  const onReady = (): void => {
    const armed = ++generation
    arm(client).then(
      () => {
        if (armed !== generation || stopped) return
        down = told = false
        debug('[%s] invalidation stream live', label)
        listener.live()
      },
      (error: unknown) => {
        if (armed === generation) lose(error)
      },
    )
  }
  client.on('error', onError)
  client.on('ready', onReady)
  client.connect().catch(() => {}) // failures arrive as 'error' events; the client retries in the background
  const stop: StopListening = async () => {
    if (stopped) return
    stopped = true
    client.off('ready', onReady)
    await closeClient(client)
    client.off('error', onError)
  }
  return Promise.resolve(stop)
}

/**
 * Closes a client gracefully, or destroys it when it has not closed within a second: a server that does not
 * answer (paused) must not keep a close waiting.
 */
export async function closeClient(client: Pick<FollowerClient, 'isOpen' | 'close' | 'destroy'>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    client.close().catch(() => undefined),
    new Promise((resolve) => (timer = setTimeout(resolve, 1000))),
  ])
  clearTimeout(timer)
  if (client.isOpen) client.destroy()
}
