"""The bottom layer: what every other part of the package speaks in, with no I/O.

``errors`` (the ``ToolBridgeError`` family and the ``ErrorType`` vocabulary), ``values`` (the
typed value codec), ``specs`` (what the host says about sessions and tools), ``variables``
(what a session variable is, as data) and ``config`` (the settings every client reads).
"""
