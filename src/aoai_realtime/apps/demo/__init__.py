"""``aoai-realtime demo``: the Memory Agent and the Visit Agent in one local web app, and a headless run.

- :mod:`.stack`: :func:`open_demo` composes the voice upstream (the local engine or Azure), the two agents,
  the browser server with the agents' personas, tools and call hooks, the demo routes and the page.
- :mod:`.routes`: the page's routes (memory browser, review threads); :mod:`.users`: the demo sign-in.
- :mod:`.caller`: a call placed like the page places it (WebRTC through the server's SDP proxy), from Python.
- :mod:`.headless`: both agents end to end with a verdict per agent; :mod:`.cli`: the command.

Nothing is loaded at import time: import the module you need.
"""
