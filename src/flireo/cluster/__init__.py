"""Running several ``flireo serve`` workers on one PostgreSQL and one Redis.

* :mod:`flireo.cluster.liveness`: each worker's heartbeat key in Redis (its node id
  is unique among the live workers), read by the others;
* :mod:`flireo.cluster.reaper`: every worker ends the calls of workers whose
  heartbeat is gone (``ended_reason`` ``worker-died``), exactly once;
* :mod:`flireo.cluster.drain`: SIGTERM stops taking new calls at once, lets the
  live ones finish (up to ``FLIREO_DRAIN_TIMEOUT_S``), then exits.

Control commands and live events reach a call's owner through
:class:`~flireo.bus.redis.RedisBus`. See docs/scale-out.md.
"""
