"""The facades users hold: ``ToolBridgeClient`` (``aio``) and its blocking twin
``SyncToolBridgeClient`` (``blocking``), what both share (``base``), ``SessionContext``
(``session_context``) and the proxy tools (``proxy``, ``variable_proxy``).

A client owns a transport and the session id, and gives each feature what it needs.
"""
