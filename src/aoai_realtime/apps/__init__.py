"""Agent applications built on the public layers: the Memory Agent and the Visit Agent.

Import the modules you need (``aoai_realtime.apps.memory_agent``, ``.visit_agent``, ``.visit_script``,
``.base``); nothing is loaded at package import time.
"""
