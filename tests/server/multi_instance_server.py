"""One server instance for the multi-instance test, run as its own process:

    python -m tests.server.multi_instance_server --port P --upstream http://127.0.0.1:U/v1 --redis redis://...

Alice may hold one call at a time; the registry heartbeat is short so a killed instance's calls are found fast.
"""

from __future__ import annotations

import argparse

import uvicorn

from aoai_realtime.auth import ApiKey
from aoai_realtime.endpoints import Endpoint
from aoai_realtime.server import RateLimitSettings, RealtimeServer, ServerSettings, UpstreamClient, create_app

from .support import PERSONAS, UPSTREAM_KEY, ToolLog, auth_hook, make_tools

HEARTBEAT_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    budget = "1000/minute"
    settings = ServerSettings(
        rate_limits=RateLimitSettings(
            session_per_user=budget, session_per_ip=budget, call_per_user=budget, call_per_ip=budget,
            storage_uri=args.redis,
        ),
        call_gate_url=args.redis,
        max_calls_per_user=1,
        call_heartbeat_s=HEARTBEAT_S,
    )  # fmt: skip
    server = RealtimeServer(
        settings=settings,
        upstream=UpstreamClient(Endpoint.local(args.upstream), ApiKey(UPSTREAM_KEY)),
        auth=auth_hook,
        personas=PERSONAS,
        tools=make_tools(ToolLog()),
    )
    uvicorn.run(create_app(server, static_dir=None), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
