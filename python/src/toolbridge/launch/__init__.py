"""Processes a script or test starts for itself: a host (``host``: ``launch_host``, ``start_host``)
and a throwaway ``redis-server`` for the Redis session store (``redis``: ``launch_redis_server``)."""
