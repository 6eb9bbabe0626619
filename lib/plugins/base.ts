import { now } from '../clock.js'
import { COMMANDS, type CommandName, type Context, type Next, type Plugin } from '../context.js'

/**
 * The optional hooks a `BasePlugin` subclass may define: one pre and one post per
 * command, and `pre`/`post` for every command (run before the command's own pre
 * hook and after its own post hook).
 */
export interface PluginHooks {
  pre?(ctx: Context): void | Promise<void>
  post?(ctx: Context): void | Promise<void>
  preAdd?(ctx: Context): void | Promise<void>
  postAdd?(ctx: Context): void | Promise<void>
  preGet?(ctx: Context): void | Promise<void>
  postGet?(ctx: Context): void | Promise<void>
  preMultiGet?(ctx: Context): void | Promise<void>
  postMultiGet?(ctx: Context): void | Promise<void>
  preSet?(ctx: Context): void | Promise<void>
  postSet?(ctx: Context): void | Promise<void>
  preMultiSet?(ctx: Context): void | Promise<void>
  postMultiSet?(ctx: Context): void | Promise<void>
  preDelete?(ctx: Context): void | Promise<void>
  postDelete?(ctx: Context): void | Promise<void>
  preExists?(ctx: Context): void | Promise<void>
  postExists?(ctx: Context): void | Promise<void>
  preIncrement?(ctx: Context): void | Promise<void>
  postIncrement?(ctx: Context): void | Promise<void>
  preExpire?(ctx: Context): void | Promise<void>
  postExpire?(ctx: Context): void | Promise<void>
  preClear?(ctx: Context): void | Promise<void>
  postClear?(ctx: Context): void | Promise<void>
  preRaw?(ctx: Context): void | Promise<void>
  postRaw?(ctx: Context): void | Promise<void>
  preClose?(ctx: Context): void | Promise<void>
  postClose?(ctx: Context): void | Promise<void>
}

type HookName = Exclude<keyof PluginHooks, 'pre' | 'post'>

/** @internal The hook names of each command, e.g. `get` → `preGet` / `postGet`. */
export const HOOK_NAMES = {} as Record<CommandName, { pre: HookName; post: HookName }>
for (const command of COMMANDS) {
  const name = (command[0]!.toUpperCase() + command.slice(1)) as Capitalize<CommandName>
  HOOK_NAMES[command] = { pre: `pre${name}`, post: `post${name}` }
}

/**
 * aiocache's plugin shape as middleware: define `preGet(ctx)`, `postSet(ctx)`, …
 * (or `pre`/`post` for every command) and they are awaited before and after
 * `next()`. Post hooks see `ctx.result` and `ctx.took`, the seconds this plugin's
 * own `next()` took. A hook that throws rejects the command.
 */
export class BasePlugin implements Plugin {
  /**
   * Whether this plugin's post hooks read `ctx.took`. A subclass that never does
   * may set it to `false` (as `HitMissRatioPlugin` does): its `next()` is then not
   * timed, which saves two clock reads per command, and `ctx.took` holds what the
   * inner layers left there.
   */
  readonly timesNext: boolean = true

  async middleware(ctx: Context, next: Next): Promise<void> {
    const names = HOOK_NAMES[ctx.command]
    const pre = this.pre
    if (pre !== undefined) {
      const out = pre.call(this, ctx)
      if (out !== undefined) await out
    }
    const preCommand = this[names.pre]
    if (preCommand !== undefined) {
      const out = preCommand.call(this, ctx)
      if (out !== undefined) await out
    }
    const postCommand = this[names.post]
    const post = this.post
    if (postCommand === undefined && post === undefined) return next()
    if (this.timesNext) {
      const started = now()
      await next()
      ctx.took = (now() - started) / 1000
    } else {
      await next()
    }
    if (postCommand !== undefined) {
      const out = postCommand.call(this, ctx)
      if (out !== undefined) await out
    }
    if (post !== undefined) {
      const out = post.call(this, ctx)
      if (out !== undefined) await out
    }
  }
}

// Declaration merging: the hooks are optional methods of every BasePlugin.
export interface BasePlugin extends PluginHooks {}
