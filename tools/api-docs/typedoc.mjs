// Runs the TypeDoc this package installs with the arguments given, e.g. `npm run docs`:
//
//   node tools/api-docs/typedoc.mjs [typedoc options…]
//
// TypeDoc needs TypeScript's compiler API, which TypeScript 7 (the project's) does not
// have, so this private workspace pins TypeScript 6 beside TypeDoc and npm installs both
// under tools/api-docs/node_modules: resolved from here, TypeDoc finds its own.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
require(join(dirname(require.resolve('typedoc/package.json')), 'bin', 'typedoc'))
