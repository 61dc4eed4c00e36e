"""Monitors: figures watched period after period, alerting a person only within a
false-alarm budget.

``budget``: the user's "at most N false alerts a month" as the e-detectors' alarm level;
``evidence``: the e-detectors of many monitors at once (rates against their reference
sample, estimates against a reference estimate), period after period, restarting after
each alert; ``definitions``: the monitors a project stores, and its budget; ``families``:
what each kind of monitor observes a day; ``state``: each monitor's frozen reference and
its days; ``run``: a monitor run; ``alerts``: their life cycle; ``words``: alerts in words;
``notify``: the webhook. The statistics themselves are :mod:`analysis.stats.sequential`.

Nothing is imported here: the Overview reads the alerts (:mod:`.alerts`) without loading
the statistics.
"""
