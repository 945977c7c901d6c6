"""A one-line progress bar for long imports, drawn only when a person is watching.

The bar goes to a terminal (the caller checks isatty) and is redrawn at most a few times a
second with a carriage return, so a log file or a pipe never receives it.
"""

import time
from collections.abc import Iterable, Iterator
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


class ProgressBar:
    """Share of the bytes of a file read, lines read and the rate so far."""

    def __init__(self, total_bytes: int, stream: TextIO) -> None:
        self.total_bytes = max(total_bytes, 1)
        self.stream = stream
        self.started = time.monotonic()
        self.drawn_at = 0.0

    def update(self, done_bytes: int, lines: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn_at < REDRAW_SECONDS:
            return
        self.drawn_at = now
        share = min(done_bytes / self.total_bytes, 1.0)
        filled = int(share * BAR_WIDTH)
        rate = lines / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:6.1%} "
            f"{lines:,} lines {rate:,.0f}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line so the next output starts on a fresh one."""
        self.stream.write("\n")
        self.stream.flush()


def lines_with_progress(lines: Iterable[bytes], bar: ProgressBar) -> Iterator[bytes]:
    """The same lines, moving the bar as they are consumed."""
    done = count = 0
    for line in lines:
        done += len(line)
        count += 1
        bar.update(done, count)
        yield line
    bar.update(done, count, force=True)
