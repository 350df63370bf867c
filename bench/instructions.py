"""Instructions per webhook: Questlog against bare aiohttp, counted by valgrind's callgrind.

bench/ingest.py measures requests/s, which on a shared virtual machine drifts by +-20 % between
runs: too coarse to judge a 2 % change to the request path. This benchmark counts the CPU
instructions the server executes instead, which repeat within about 1 %:

1. the server (``questlog run --web-only``, then the bare aiohttp handler of bench/ingest.py)
   runs under ``valgrind --tool=callgrind`` twice: once answering ``--baseline`` requests and
   once ``--baseline`` + ``--requests``; the difference of the two totals, divided by
   ``--requests``, is the cost of one request without start-up and shutdown;
2. every run gets a fresh config, database and two endpoints made with the CLI, and distinct
   pre-signed requests made as in bench/ingest.py, so nothing is deduplicated away;
3. the requests come from a small asyncio client (32 connections): the client's speed does not
   matter, since only the server's instructions are counted;
4. prints instructions per request for both servers and their ratio (bare / Questlog, the same
   direction as bench/ingest.py's requests/s ratio).

Instructions leave out what the kernel does (socket and WAL writes) and memory stalls, so the
ratio of instructions is a little higher than the ratio of requests/s. Runs take 1-3 minutes.
Run it with the project's interpreter: ``.venv/bin/python bench/instructions.py`` (``--help``).
Exit status: 0 when every request was answered 200, 1 otherwise, 2 when valgrind is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest  # a sibling script, not a package
from ingest import (
    HOST,
    build_workload,
    create_endpoint,
    free_port,
    questlog_command,
    server_process,
    stop_process,
    write_config,
)

INSTALL_VALGRIND = """\
bench/instructions.py needs valgrind (https://valgrind.org):
  Debian/Ubuntu:  apt-get install valgrind   (as root, or with sudo)
then run the benchmark again."""
CONNECTIONS = 32
# Under valgrind a server starts and stops 20-50 times slower than usual.
ingest.STARTUP_SECONDS = 300.0
ingest.STOP_SECONDS = 300.0
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


async def drive(port: int, lines: list[str]) -> dict[int, int]:
    """Send every request once over CONNECTIONS connections; returns the status counts."""
    statuses: dict[int, int] = {}
    pending = iter(lines)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for line in pending:
                path, signature, body = line.split("\t")
                headers = {"X-Signature": signature, "Content-Type": "application/json"}
                url = f"http://{HOST}:{port}{path}"
                async with session.post(url, data=body.encode(), headers=headers) as reply:
                    await reply.read()
                    statuses[reply.status] = statuses.get(reply.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return statuses


def counted_run(
    command: list[str], port: int, lines: list[str], workdir: Path, name: str
) -> tuple[int, dict[int, int]]:
    """Run the server under callgrind, send ``lines``, stop it; (instructions, statuses)."""
    out = workdir / f"callgrind-{name}.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
    with server_process(valgrind, port, workdir / f"{name}.log", name) as process:
        statuses = asyncio.run(drive(port, lines))
        status = stop_process(process)
    if status != 0:
        raise RuntimeError(f"{name} exited with status {status}")
    found = _SUMMARY.search(out.read_text("utf-8", "replace"))
    if found is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(found.group(1)), statuses


def per_request(what: str, args: argparse.Namespace) -> tuple[float, bool]:
    """Instructions per request for one server, and whether every request got 200."""
    ok = True
    totals = []
    for count in (args.baseline, args.baseline + args.requests):
        # A fresh database and fresh endpoints per run, so no request is a duplicate.
        workdir = args.workdir / f"{what}-{count}"
        workdir.mkdir()
        config = write_config(workdir, 0, 36_000)
        bm = create_endpoint(config, "playtime")
        mc = create_endpoint(config, "minecraft")
        lines = build_workload(count, bm, mc, 2000, datetime.now(UTC)).lines
        port = free_port()
        if what == "questlog":
            write_config(workdir, port, 36_000)
            command = [*questlog_command(), "run", "--web-only", "--config", str(config)]
        else:
            bare = Path(__file__).with_name("ingest.py")
            command = [sys.executable, str(bare), "--bare-server", str(port)]
        print(f"{what}: {count} requests under callgrind", flush=True)
        total, statuses = counted_run(command, port, lines, workdir, what)
        if statuses != {200: count}:
            print(f"  unexpected answers: {statuses}")
            ok = False
        totals.append(total)
    return (totals[1] - totals[0]) / args.requests, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/instructions.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=1000, help="measured requests (1000)")
    parser.add_argument(
        "--baseline", type=int, default=200, help="requests of the subtracted run (200)"
    )
    args = parser.parse_args(argv)
    if args.requests < 2 or args.baseline < 2:
        parser.error("need --requests >= 2 and --baseline >= 2")
    if shutil.which("valgrind") is None:
        print(INSTALL_VALGRIND, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="questlog-instructions-") as tmp:
        args.workdir = Path(tmp)
        questlog, ok_q = per_request("questlog", args)
        bare, ok_b = per_request("bare", args)
    print(f"\n{args.requests} requests (half BattleMetrics, half Minecraft), after {args.baseline}")
    print(f"  Questlog       {questlog:12,.0f} instructions per request")
    print(f"  bare aiohttp   {bare:12,.0f} instructions per request")
    print(f"  ratio bare / Questlog: {bare / questlog:.3f}")
    return 0 if ok_q and ok_b else 1


if __name__ == "__main__":
    sys.exit(main())
