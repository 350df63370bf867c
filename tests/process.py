"""Helpers to run Questlog as a real subprocess (``python -m bot``) in tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LISTENING = re.compile(r"web server listening on (http://\S+)")


def write_config(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    data: dict[str, dict[str, Any]] = {
        "database": {"path": str(tmp_path / "data" / "q.sqlite3")},
        "web": {"port": 0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    lines = []
    for name, values in data.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "STEAM_API_KEY")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(
    *args: str, cwd: Path, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=_env(),
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"questlog {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        )
    return result


@dataclass
class Running:
    process: subprocess.Popen[str]
    base_url: str
    log: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


@contextmanager
def running(
    config: Path, *extra: str, cwd: Path, startup_timeout: float = 30.0
) -> Iterator[Running]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(config), *extra],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            match = LISTENING.search(line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + startup_timeout
    while not found.is_set() and time.monotonic() < deadline and process.poll() is None:
        found.wait(0.05)
    if not found.is_set():
        process.kill()
        process.wait()
        raise AssertionError("server did not start:\n" + "\n".join(lines))
    handle = Running(process, url[0], lines)
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
