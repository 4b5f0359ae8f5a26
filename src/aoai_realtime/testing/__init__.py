"""Helpers for tests of code built on aoai-realtime; nothing in the library imports this package.

- :mod:`.engine`: the local engine in memory or on a loopback socket (``EngineHarness``, ``serve_engine``);
- :mod:`.virtual_time`: an event loop on virtual time (``run_virtual``) for real-time pacing at full speed;
- :mod:`.fake_upstream`: a stand-in for the Azure service the browser server talks to;
- :mod:`.audio`: speech and silence fixtures; :mod:`.tls`: a self-signed certificate for ``wss://``.

Nothing is imported here, so importing the package costs nothing; import the submodules you need.
"""
