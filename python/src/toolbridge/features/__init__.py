"""Features on the wire: each a function of a transport and a session id (or of a channel).

``batch`` (BatchExecuteTools), ``retry`` (the retry policy), ``metrics`` (GetMetrics),
``health`` (HealthCheck), ``variables`` and ``watch`` (the variable RPCs), ``pool`` (channels
reused across clients) and ``shutdown`` (letting tracked calls finish). Each offers what the
asyncio client awaits and what the blocking client calls, sharing everything but the waiting.
"""
