"""Benchmark: the session (token) route under load, ours side by side with the TypeScript SDK's Express server.

Both servers mint against the same fake upstream (an aiohttp process on 127.0.0.1) answering in 0 ms and in
150 ms, at 8 and 64 concurrent connections. Printed per row: throughput, p50 and p99 latency, and for the
150 ms upstream the share of the Little's-law bound (connections / upstream latency) and p99 minus the
upstream latency. Targets (issue 5): >= 90% of the bound, p99 < upstream + 30 ms, throughput >= Express's.

    .venv/bin/python bench/bench_server.py [--seconds 5]      (or: aoai-realtime bench server)

Our server runs the way ``aoai-realtime serve`` runs it (uvicorn, one process) with its rate limiter on
(budgets large enough not to trip). The machine is shared: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
NPM_DIR = HERE / ".npm"
KEY = "bench-upstream-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_ours(port: int, upstream: str) -> None:
    """Run our server (child process mode)."""
    import uvicorn
    from fastapi import Request

    from aoai_realtime.auth import ApiKey
    from aoai_realtime.endpoints import Endpoint
    from aoai_realtime.server import (
        Persona,
        RateLimitSettings,
        RealtimeServer,
        ServerSettings,
        UpstreamClient,
        User,
        create_app,
    )

    user = User(id="bench", name="Bench", personas=frozenset({"assistant"}))

    def hook(request: Request) -> User | None:
        return user if request.headers.get("authorization") == "Bearer bench" else None

    big = "100000000/minute"
    server = RealtimeServer(
        settings=ServerSettings(
            rate_limits=RateLimitSettings(session_per_user=big, session_per_ip=big, call_per_user=big, call_per_ip=big)
        ),
        upstream=UpstreamClient(Endpoint.azure(endpoint=upstream, deployment="gpt-realtime"), ApiKey(KEY)),
        auth=hook,
        personas=[Persona(id="assistant", title="Assistant", instructions="You are a friendly voice assistant.")],
    )
    uvicorn.run(
        create_app(server, static_dir=None),
        host="127.0.0.1",
        port=port,
        proxy_headers=False,
        access_log=False,
        log_level="warning",
        backlog=2048,
    )


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


async def load(url: str, body: dict[str, str], headers: dict[str, str], conns: int, seconds: float) -> Result:
    connector = aiohttp.TCPConnector(limit=conns, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        latencies: list[float] = []
        errors = 0
        warm_until = time.perf_counter() + 1.0
        stop_at = warm_until + seconds

        async def worker() -> None:
            nonlocal errors
            while (start := time.perf_counter()) < stop_at:
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
                done = time.perf_counter()
                if start >= warm_until:
                    if ok:
                        latencies.append((done - start) * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(conns)))
        return Result(requests=len(latencies), errors=errors, seconds=seconds, latencies_ms=latencies)


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def express_available() -> str | None:
    """None when the Express server can run, else why not."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NPM_DIR / "node_modules" / "azure-realtime-webrtc").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed"
        NPM_DIR.mkdir(exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(NPM_DIR),
                "azure-realtime-webrtc@0.2.1",
                "express@5",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return f"npm install failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per row (after 1 s warm-up)")
    parser.add_argument("--serve-ours", nargs=2, metavar=("PORT", "UPSTREAM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ours:
        serve_ours(int(args.serve_ours[0]), args.serve_ours[1])
        return
    try:
        import uvloop  # the load generator must not be the bottleneck; both servers get the same one
    except ImportError:
        asyncio.run(run(args.seconds))
    else:
        uvloop.run(run(args.seconds))


async def run(seconds: float) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    why_not_express = express_available()
    print(f"bench_server: {os.cpu_count()} cores (shared), {seconds:.0f} s per row after 1 s warm-up")
    if why_not_express:
        print(f"Express (azure-realtime-webrtc) not run: {why_not_express}")
    header = (
        f"{'server':<9} {'upstream':>8} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        "  vs bound / p99-upstream"
    )
    print(header)
    print("-" * len(header))
    rows: dict[tuple[str, int, int], Result] = {}
    for latency_ms in (0, 150):
        up_port = free_port()
        upstream = subprocess.Popen(  # noqa: ASYNC220  # setup, before any load runs
            [
                sys.executable,
                "-m",
                "aoai_realtime.testing.fake_upstream",
                "--port",
                str(up_port),
                "--latency-ms",
                str(latency_ms),
                "--api-key",
                KEY,
            ],
            env=env,
        )
        procs = [upstream]
        try:
            wait_port(up_port, upstream, "fake upstream")
            base = f"http://127.0.0.1:{up_port}"
            servers: list[tuple[str, str, dict[str, str]]] = []
            ours_port = free_port()
            ours = subprocess.Popen([sys.executable, __file__, "--serve-ours", str(ours_port), base], env=env)  # noqa: ASYNC220
            procs.append(ours)
            wait_port(ours_port, ours, "our server")
            servers.append(("ours", f"http://127.0.0.1:{ours_port}/api/realtime/session", {"persona": "assistant"}))
            if not why_not_express:
                ex_port = free_port()
                express = subprocess.Popen(  # noqa: ASYNC220
                    ["node", str(HERE / "express_token_server.cjs"), str(ex_port), base, KEY],
                    env={**env, "NODE_PATH": str(NPM_DIR / "node_modules")},
                    stdout=subprocess.DEVNULL,
                )
                procs.append(express)
                wait_port(ex_port, express, "Express server")
                servers.append(("express", f"http://127.0.0.1:{ex_port}/api/realtime/token", {}))
            for conns in (8, 64):
                for name, url, body in servers:
                    result = await load(url, body, {"Authorization": "Bearer bench"}, conns, seconds)
                    rows[(name, latency_ms, conns)] = result
                    extra = ""
                    if latency_ms:
                        bound = conns / (latency_ms / 1000)
                        extra = f"  {100 * result.rps / bound:5.1f}% / {result.pct(0.99) - latency_ms:+6.1f} ms"
                    print(
                        f"{name:<9} {latency_ms:>6}ms {conns:>5} {result.rps:>8.0f} {result.pct(0.5):>7.1f} "
                        f"{result.pct(0.99):>7.1f} {result.errors:>6}{extra}",
                        flush=True,
                    )
        finally:
            for proc in reversed(procs):
                stop(proc)
    if not why_not_express:
        print("\nthroughput ratio ours / express (same run):")
        for latency_ms in (0, 150):
            for conns in (8, 64):
                ours_r, ex_r = rows[("ours", latency_ms, conns)], rows[("express", latency_ms, conns)]
                print(f"  upstream {latency_ms:>3} ms, {conns:>2} conns: {ours_r.rps / ex_r.rps:5.2f}x")


if __name__ == "__main__":
    main()
