import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toSeconds } from '../lib/index.js'

test('numbers are seconds, fractions allowed', () => {
  assert.is(toSeconds(5, 'ttl'), 5)
  assert.is(toSeconds(0.25, 'ttl'), 0.25)
  assert.is(toSeconds(0, 'ttl'), 0)
})

test('units: ms, s, m, h, d', () => {
  assert.is(toSeconds('250ms', 'ttl'), 0.25)
  assert.is(toSeconds('10s', 'ttl'), 10)
  assert.is(toSeconds('5m', 'ttl'), 300)
  assert.is(toSeconds('1h', 'ttl'), 3600)
  assert.is(toSeconds('1d', 'ttl'), 86400)
  assert.is(toSeconds('1.5s', 'ttl'), 1.5)
})

test('null means none', () => {
  assert.is(toSeconds(null, 'ttl'), 0)
})

test('negative, NaN, Infinity and bad strings are RangeErrors naming the option', () => {
  for (const bad of [-1, Number.NaN, Infinity, '10', '10 years', '-5s', '', 's', {}, true]) {
    assert.throws(
      () => toSeconds(bad, 'ttl'),
      (e: unknown) => e instanceof RangeError && /ttl/.test((e as Error).message),
      String(bad),
    )
  }
})

test.run()
