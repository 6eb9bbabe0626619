// Node flags for the child processes that keep 1000 requests in flight (bench/backend-runner.ts, bench/batch.ts).
//
// V8 pretenures by allocation site: when most objects of one object or array literal are still alive at a young
// collection, it allocates that literal's later objects straight in the old generation. With 1000 requests in
// flight, a young collection that comes soon after the previous one (the young generation starts at 1 MB and
// grows) finds ~1000 live objects out of ~1100 made at the sites of a request (the client's and the cache's), and
// V8 decides to pretenure them. From then on every request's objects are old-generation garbage: a mark-compact
// every ~150 ms instead of one per process, and the process runs at half its rate for its whole life. Whether
// that decision is taken depends on when the first collections fall, so it strikes processes at random, the raw
// clients' and the caches' alike. With V8's default, 11 of 12 processes running the raw @redis/client's sets ran
// that way, and 5 of 12 running RedisCache's, at about twice the CPU per set; each of those traced with
// `--trace-pretenuring-statistics` showed the decision ("(1110, 1000, 0.90) undecided => tenure"), and the one
// fast process traced showed none. That lottery, more than the client, decided a paired ratio (0.585× to 1.259×
// between full runs of one tree). With the flag, each of 8 processes ran one mark-compact in all
// (bench/RESULTS.md, "Pretenuring").
//
// `--pretenuring` (on the command line of the bench) leaves V8's default, to see the lottery.

/** The flags of a child with 1000 in flight, before `--import tsx`. */
export const IN_FLIGHT_FLAGS: readonly string[] = process.argv.includes('--pretenuring')
  ? []
  : ['--no-allocation-site-pretenuring']

/** How the header of a bench states the flags. */
export const inFlightFlagsText = (): string =>
  IN_FLIGHT_FLAGS.length === 0
    ? "children with V8's default pretenuring (--pretenuring)"
    : `children run with ${IN_FLIGHT_FLAGS.join(' ')} (bench/support/in-flight-flags.ts)`
