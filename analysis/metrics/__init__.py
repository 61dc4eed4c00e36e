"""Metrics: the ML metrics in portable SQL (:mod:`.sql`), product metrics
(:mod:`.product`) written as checked expressions (:mod:`.expressions`), their decomposition
into additive parts for comparisons (:mod:`.decompose`) and the ones that fail on the
compared rows (:mod:`.failures`); the per-day rollup of their sufficient statistics
(:mod:`.rollup`) that the Overview reads."""
