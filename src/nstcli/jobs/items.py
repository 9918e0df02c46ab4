"""What a job of many items reports (nst batch, nst apply): each item's result, and the counts so far.

An item is done, skipped (its output existed, so a re-run resumes) or failed (with the reason); a
failed item does not stop the others. The library yields one `ItemResult` per item; the skins count
them in an `ItemSummary` and render both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Item(Protocol):
    """What a job's item tells its results: its output, and how it is named in a summary and in JSON."""

    @property
    def label(self) -> str: ...  # e.g. "photo.jpg with style starry.jpg"

    def fields(self) -> dict[str, str]: ...  # its inputs and output, for a JSON line


@dataclass
class ItemResult:
    """What happened to one item."""

    item: Any  # an Item (stylize/batch_plan.BatchItem, fast/apply.ApplyItem)
    status: str  # "done", "skipped" or "failed"
    seconds: float = 0.0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # what the job adds (a batch item's precision)

    def summary(self) -> dict:
        """A JSON-ready description (one line of `--json`)."""
        return {**self.item.fields(), "status": self.status, "seconds": round(self.seconds, 3), "error": self.error,
                **self.details}


@dataclass
class ItemSummary:
    """Counts as results come in (the CLI turns them into its bar and closing lines)."""

    planned: int
    shard: tuple[int, int] | None = None
    done: int = 0
    skipped: int = 0
    failed: list[ItemResult] = field(default_factory=list)

    def add(self, result: ItemResult) -> None:
        if result.status == "done":
            self.done += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append(result)

    @property
    def finished(self) -> int:
        return self.done + self.skipped + len(self.failed)
