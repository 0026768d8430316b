"""Processes a script or test starts for itself: a host (``host``: ``launch_host``, ``start_host``)
and a throwaway Redis for the Redis session store (``redis``: ``launch_redis_server``, with
replicas or not, and ``launch_redis_cluster``)."""
