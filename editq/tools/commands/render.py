"""Tables for people (rich) and the progress of a batch: a bar with an ETA in a terminal,
plain lines in a pipe."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bar
from rich.table import Table
from rich.text import Text

from editq.client import EditJob, Estimate, Usage
from editq.tools.commands.common import console

STATUS_STYLES = {
    "queued": "blue",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "canceled": "yellow",
    "expired": "yellow",
}
#: Seconds between two plain progress lines.
PLAIN_EVERY = 2.0


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLES.get(value, ""))


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def usd(value: Decimal | None) -> str:
    return "-" if value is None else f"${value}"


def _fields(title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    return table


def job_table(job: EditJob) -> Table:
    """One job, field by field: what `editq status` shows."""
    table = _fields(job.id)
    table.add_row("status", status(job.status))
    if job.queue_position is not None:
        table.add_row("queue position", str(job.queue_position))
    table.add_row("model", job.model or "")
    if job.model_note:
        table.add_row("model note", job.model_note)
    table.add_row("prompt", job.prompt or "")
    options = {k: v for k, v in job.options.items() if v is not None}
    if options:
        table.add_row("options", ", ".join(f"{k}={v}" for k, v in options.items()))
    table.add_row("created", when(job.created_at))
    if job.started_at:
        table.add_row("started", when(job.started_at))
    if job.finished_at:
        table.add_row("finished", when(job.finished_at))
    cost = job.cost
    table.add_row("cost", f"estimated {usd(cost.estimated_usd)}, actual {usd(cost.actual_usd)}")
    for index, output in enumerate(job.outputs):
        table.add_row(
            f"output {index}", f"{output.url} ({output.width}x{output.height} {output.content_type})"
        )
    for name, error in (("error", job.error), ("last error", job.last_error)):
        if error is not None:
            table.add_row(name, Text(f"{error.code}: {error.message}", style="red"))
    return table


def jobs_table(jobs: Iterable[EditJob]) -> Table:
    table = Table(title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("prompt", overflow="ellipsis", no_wrap=True, max_width=48)
    for job in jobs:
        actual = job.cost.actual_usd
        cost = usd(actual) if actual is not None else f"≤ {usd(job.cost.estimated_usd)}"
        table.add_row(
            job.id, status(job.status), job.model or "", when(job.created_at), cost, job.prompt or ""
        )
    return table


def usage_tables(usage: Usage) -> list[Table]:
    budgets = Table(title=f"Budgets of {usage.tenant}", title_justify="left")
    for name in ("period", "limit", "spent", "reserved", "remaining"):
        budgets.add_column(name, justify="left" if name == "period" else "right")
    for period, budget in usage.budgets.items():
        budgets.add_row(
            period,
            usd(budget.limit_usd) if budget.limit_usd is not None else "no limit",
            usd(budget.spent_usd),
            usd(budget.reserved_usd),
            usd(budget.remaining_usd),
        )
    spend = Table(
        title=f"Spend by {usage.group_by}, {usage.from_} to {usage.to}: {usd(usage.spent_usd)}",
        title_justify="left",
    )
    for name in (usage.group_by, "spent", "settled", "released", "reused"):
        spend.add_column(name, justify="left" if name == usage.group_by else "right")
    for group in usage.groups:
        key = group.day if usage.group_by == "day" else group.model
        spend.add_row(
            key or "",
            usd(group.spent_usd),
            str(group.jobs_settled),
            str(group.jobs_released),
            str(group.jobs_reused),
        )
    return [budgets, spend]


def estimate_table(estimate: Estimate) -> Table:
    table = _fields("Estimate (nothing was stored)")
    called = f" (called as {estimate.model_called})" if estimate.model_called != estimate.model else ""
    table.add_row("model", f"{estimate.model}{called}")
    if estimate.model_note:
        table.add_row("model note", estimate.model_note)
    table.add_row("provider size", estimate.provider_size or "")
    table.add_row("quality", estimate.quality or "")
    table.add_row("outputs", str(estimate.n))
    table.add_row("estimated cost", usd(estimate.estimated_usd) if estimate.estimated_usd else "unknown")
    for period, left in estimate.budget_remaining_usd.items():
        table.add_row(f"budget left ({period})", usd(left) if left is not None else "no limit")
    return table


class Progress:
    """Progress on stderr: a bar with elapsed time and ETA in a terminal; otherwise a plain line
    (`label: done/total, eta 12s`) every `PLAIN_EVERY` seconds and at the end."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.started = self.shown = time.monotonic()
        self.bar: Bar | None = None
        if sys.stderr.isatty():
            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console(stderr=True),
            )
            self.task = self.bar.add_task(label, total=total)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def advance(self, step: int = 1) -> None:
        self.done += step
        if self.bar is not None:
            self.bar.update(self.task, advance=step)
            return
        now = time.monotonic()
        if self.done >= self.total or now - self.shown >= PLAIN_EVERY:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-6)
            eta = f", eta {(self.total - self.done) / rate:.0f}s" if 0 < self.done < self.total else ""
            sys.stderr.write(f"{self.label}: {self.done}/{self.total}{eta}\n")
            sys.stderr.flush()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.stop()
