"""`python -m cdp import` options, run as users run them: --skip-invalid, --bulk, the
progress bar (only on a terminal: stderr is a real pseudo-terminal here) and the summary."""

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cdp

REPO_ROOT = Path(cdp.__file__).resolve().parent.parent


def cdp_command(url: str, *args: str, stderr: int | None = None) -> subprocess.Popen[bytes]:
    environment = dict(os.environ, CDP_DATABASE_URL=url)
    return subprocess.Popen(
        [sys.executable, "-m", "cdp", *args],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr,
    )


def run_cdp(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, CDP_DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "cdp", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(path: Path, records: list[dict[str, Any] | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def people(count: int) -> list[dict[str, Any] | str]:
    records: list[dict[str, Any] | str] = []
    for number in range(1, count + 1):
        records.append({"kind": "profile", "customer_id": f"C-{number}", "first_name": "Ana"})
        records.append(
            {
                "kind": "event",
                "customer_id": f"C-{number}",
                "type": "login",
                "at": "2026-11-20T09:00:00Z",
                "event_id": f"E-{number}",
            }
        )
    return records


@pytest.fixture
def initialised(cdp_url: str) -> str:
    result = run_cdp(cdp_url, "init")
    assert result.returncode == 0, result.stderr
    return cdp_url


@pytest.mark.parametrize("bulk", [[], ["--bulk"]], ids=["one-by-one", "bulk"])
def test_skip_invalid_reports_each_bad_line_and_exits_1(
    initialised: str, tmp_path: Path, bulk: list[str]
) -> None:
    records = people(3)
    records.insert(2, "[1, 2]")
    records.insert(
        4, {"kind": "order", "customer_id": "C-1", "order_id": "O-1", "placed_at": "soon"}
    )
    path = write(tmp_path / "mixed.jsonl", records)

    result = run_cdp(initialised, "import", str(path), "--skip-invalid", *bulk)

    assert result.returncode == 1
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2
    assert skipped[0] == f"skipped {path}:3: field $: must be a JSON object, got array"
    assert skipped[1].startswith(f"skipped {path}:5: field placed_at: ")
    assert result.stderr.splitlines()[-1] == f"error: 2 invalid lines of {path} were skipped"
    assert "read 8, written 6, skipped 2 in " in result.stdout
    assert "skipped lines: 3, 5 " in result.stdout
    shown = run_cdp(initialised, "profile", "show", "C-3", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["computed"]["last_event"]["value"] == "login"


def test_without_skip_invalid_nothing_is_written(initialised: str, tmp_path: Path) -> None:
    records = people(3)
    records.insert(4, "{oops")
    path = write(tmp_path / "bad.jsonl", records)
    result = run_cdp(initialised, "import", str(path), "--bulk")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {path}:5: field $: not valid JSON")
    assert run_cdp(initialised, "profile", "show", "C-1").returncode == 1


def read_all(fd: int, process: subprocess.Popen[bytes]) -> bytes:
    """Everything written to a pseudo-terminal until the process ends and it is drained."""
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    return b"".join(chunks)


def test_progress_bar_on_a_terminal_only(initialised: str, tmp_path: Path) -> None:
    path = write(tmp_path / "people.jsonl", people(200))

    controller, terminal = pty.openpty()
    try:
        process = cdp_command(initialised, "import", str(path), "--bulk", stderr=terminal)
        os.close(terminal)
        on_terminal = read_all(controller, process).decode()
        stdout = process.communicate(timeout=120)[0].decode()
    finally:
        os.close(controller)
    assert process.returncode == 0, on_terminal
    assert "\r[" in on_terminal and "100.0%" in on_terminal and "400 lines" in on_terminal
    assert "read 400, written 400, skipped 0 in " in stdout

    piped = run_cdp(initialised, "import", str(path), "--bulk")
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert "read 400, written 0, skipped 0 in " in piped.stdout
    assert "[" not in piped.stdout
