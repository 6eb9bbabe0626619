/**
 * The environment of a child process a spec starts: the parent's, with `extra`
 * over it, and coverage off. Under c8 a child's coverage of the same lib files
 * would be merged with this process's, script by script, and the child loads
 * them through another tsx hook, so the merged figures come out garbled. Node
 * copies NODE_V8_COVERAGE into every child's environment unless the key is
 * present, so it is set to '' (off) rather than left out — and nothing is
 * written to the temp directory.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra, NODE_V8_COVERAGE: '' }
}
