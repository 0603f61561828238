"""Which days of a range can be loaded: every day's files verified before any run is planned.

One bad file must not hold back a year. A run over a range of days is one Dagster run, and one
partition of such a run cannot fail alone (dagster-io/dagster issue 17836), so the days are
sorted out first: each day's files are verified (`extract.verify_delivery`: there, readable, the
feed's header, what its manifest says), and the range is cut into blocks of consecutive days
that are ready and blocks that are held back, each block one run. The landing sensor does the
same with the days a tick finds (`delivery_blocks`): a backlog of ready days is one run, and a day
with a bad file is a run of its own, which fails with the file's error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from etl_assets.pipeline import extract
from etl_assets.pipeline.contract import DAILY_FEEDS, REFERENCE_FEEDS
from etl_assets.pipeline.deliveries import Delivery
from etl_assets.pipeline.landing import daily_file, reference_file
from etl_assets.pipeline.tables import TableContract


@dataclass(frozen=True)
class Block:
    """Consecutive days that are all ready, or all held back (with the feeds and reasons)."""

    start: dt.date
    end: dt.date  # included
    problems: dict[str, list[str]] = field(default_factory=dict)  # feed: what is wrong, by file

    @property
    def held(self) -> bool:
        return bool(self.problems)

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}..{self.end}"


@dataclass(frozen=True)
class Readiness:
    blocks: list[Block]
    reference_problems: dict[str, str]  # feed: what is wrong with its file

    @property
    def held_days(self) -> int:
        return sum((b.end - b.start).days + 1 for b in self.blocks if b.held)


def day_problems(
    landing_dir: Path,
    day: dt.date,
    policy: str = "warn",
    feeds: Sequence[TableContract] = DAILY_FEEDS,
    drift: str = "warn",
) -> dict[str, str]:
    """What keeps the day's files from loading, by feed; empty when every file is fine."""
    problems = {}
    for contract in feeds:
        path = daily_file(landing_dir, contract.name, day)
        problem = _problem(landing_dir, path, contract, policy, drift)
        if problem:
            problems[contract.name] = problem
    return problems


def check_range(
    landing_dir: Path, days: Sequence[dt.date], policy: str = "warn", drift: str = "warn"
) -> Readiness:
    """Every day's files verified, and the days cut into ready and held-back blocks."""
    landing_dir = Path(landing_dir)
    blocks: list[Block] = []
    for day in days:
        problems = {
            feed: [why] for feed, why in day_problems(landing_dir, day, policy, drift=drift).items()
        }
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and last.end + dt.timedelta(days=1) == day
            and last.held == bool(problems)
        ):
            merged = {
                feed: [*last.problems.get(feed, []), *problems.get(feed, [])]
                for feed in {*last.problems, *problems}
            }
            blocks[-1] = Block(last.start, day, merged)
        else:
            blocks.append(Block(day, day, problems))
    reference = {
        c.name: why
        for c in REFERENCE_FEEDS
        if (why := _problem(landing_dir, reference_file(landing_dir, c.name), c, policy, drift))
    }
    return Readiness(blocks=blocks, reference_problems=reference)


@dataclass(frozen=True)
class DeliveryBlock:
    """Days delivered together, for one run: consecutive days whose new files are the same feeds'
    and all verified, or one day with a file that cannot load (`problems`, by feed)."""

    start: dt.date
    end: dt.date  # included
    feeds: tuple[str, ...]
    deliveries: tuple[Delivery, ...]
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return bool(self.problems)


def delivery_blocks(
    landing_dir: Path,
    daily: Mapping[dt.date, Sequence[Delivery]],
    policy: str = "warn",
    drift: str = "warn",
) -> list[DeliveryBlock]:
    """The days' new files verified as `check_range` verifies a range (only the feeds delivered
    that day), and cut into blocks by day: a block grows while the next day is ready with the
    same feeds; a day with a bad file stands alone."""
    contracts = {c.name: c for c in DAILY_FEEDS}
    blocks: list[DeliveryBlock] = []
    for day in sorted(daily):
        feeds = tuple(sorted({d.feed for d in daily[day]}))
        problems = day_problems(
            Path(landing_dir), day, policy, [contracts[f] for f in feeds], drift
        )
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and not last.held
            and not problems
            and last.feeds == feeds
            and last.end + dt.timedelta(days=1) == day
        ):
            blocks[-1] = replace(last, end=day, deliveries=(*last.deliveries, *daily[day]))
        else:
            blocks.append(DeliveryBlock(day, day, feeds, tuple(daily[day]), problems))
    return blocks


def _problem(
    landing_dir: Path, path: Path, contract: TableContract, policy: str, drift: str
) -> str | None:
    if not path.exists() and not path.is_symlink():
        return f"{path}: missing from the landing zone"
    try:
        extract.delivered(landing_dir, path, None)  # inside the landing zone
        extract.verify_delivery(path, contract, policy, drift)
    except extract.DeliveryError as error:
        return str(error)
    except OSError as error:  # gone or unreadable while looked at
        return f"{path}: cannot be read ({error.strerror or error})"
    return None
