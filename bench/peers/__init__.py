"""The peers the benchmarks compare aimctl with: an idiomatic kopf operator and a plain asyncio
client with no framework (the ceiling). Both make the same writes as aimctl's reconciler, built by
the same pure functions (:mod:`bench.peers._kvcache`)."""
