"""Run the SAYMON simulator standalone for demos: `python -m tools.simulator --help`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
import logging
from pathlib import Path
import signal
import ssl
import tempfile

from .server import DEFAULT_LOGIN, DEFAULT_PASSWORD, SaymonSimulator
from .tls import CertFiles, write_self_signed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.simulator",
        description="Fake SAYMON server: REST (/node/api) and Comet (Socket.IO) on 127.0.0.1.",
    )
    parser.add_argument("--objects", type=int, default=40, help="number of objects (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="model seed (default 1)")
    parser.add_argument("--rest-port", type=int, default=8080, help="REST port, 0 = any free")
    parser.add_argument("--comet-port", type=int, default=8091, help="Comet port, 0 = any free")
    parser.add_argument("--login", default=DEFAULT_LOGIN)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--token", default=None, help="API token (random when omitted)")
    parser.add_argument("--tick", type=float, default=None, help="random changes every N seconds")
    parser.add_argument("--session-ttl", type=float, default=3600.0, help="session lifetime (s)")
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS/WSS with a self-signed cert"
    )
    parser.add_argument("--certfile", type=Path, help="PEM certificate (implies TLS)")
    parser.add_argument("--keyfile", type=Path, help="PEM key for --certfile")
    parser.add_argument("--quiet", action="store_true", help="do not log tick changes")
    parser.add_argument(
        "--incident-timeout",
        type=float,
        default=60.0,
        help="seconds cleared incidents stay listed before the history (SAYMON: 3600)",
    )
    return parser


def _banner(sim: SaymonSimulator, cert: Path | None) -> str:
    info = sim.info()
    lines = [
        f"SAYMON simulator running: {info['objects']} objects, {info['links']} links, "
        f"{info['active_incidents']} active incidents",
        f"REST URL:     {sim.rest_url}   (API under /node/api)",
        f"Comet URL:    {sim.comet_url}   (Socket.IO path /socket.io/, query ?sessionId=<sid>)",
        f"Login:        {sim.login} / {sim.password}",
        f"API token:    {sim.api_token}",
        f"Viewer:       {sim.viewer_login} / {sim.viewer_password}   (no manage rights)",
        f"Control URL:  {sim.control_url}   (GET /info, /sockets, /counters; POST /state ...)",
        f"Root object:  {sim.model.root_id}",
    ]
    if cert is not None:
        lines.append(f"TLS cert:     {cert}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def _serve(args: argparse.Namespace, certs: CertFiles | None) -> None:
    context: ssl.SSLContext | None = certs.server_context() if certs else None
    sim = SaymonSimulator(
        objects=args.objects,
        seed=args.seed,
        login=args.login,
        password=args.password,
        api_token=args.token,
        rest_port=args.rest_port,
        comet_port=args.comet_port,
        ssl_context=context,
        session_ttl=args.session_ttl,
        tick=args.tick,
        incident_timeout=args.incident_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(signum, stop.set)
    await sim.start()
    try:
        print(_banner(sim, certs.cert if certs else None), flush=True)
        await stop.wait()
    finally:
        await sim.stop()
    print("Stopped.", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until Ctrl-C or SIGTERM."""
    args = _parser().parse_args(argv)
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        for noisy in ("aiohttp.access", "socketio", "engineio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        certs: CertFiles | None = None
        if args.certfile:
            certs = CertFiles(args.certfile, args.keyfile or args.certfile)
        elif args.tls:
            certs = write_self_signed(Path(tmp))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args, certs))


if __name__ == "__main__":
    main()
