"""The marts' daily series as charts (PNG, drawn by matplotlib): one per mart, over every day it
holds. The UI shows each on its mart's page after a run; `etl-assets chart` writes them for
analysts from the published marts. Each query here reads the marts only, so it works on the
warehouse and on the published copy alike."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

if TYPE_CHECKING:  # matplotlib is imported where a chart is drawn, not with the pipeline
    from matplotlib.figure import Figure

# mart: (title, y-axis label, query giving day, line and value, days averaged per point)
CHARTS: dict[str, tuple[str, str, str, int]] = {
    "fct_flights": (
        "Flights a day from New York's airports",
        "flights",
        """SELECT flight_date AS day, status AS line, count(*) AS value
           FROM marts.fct_flights GROUP BY ALL ORDER BY ALL""",
        1,
    ),
    "carrier_daily_performance": (
        "On-time rate of the six largest carriers (arrived within 15 min), 7-day mean",
        "on-time rate",
        """WITH top AS (SELECT carrier FROM marts.carrier_daily_performance
                        GROUP BY carrier ORDER BY sum(flights) DESC, carrier LIMIT 6)
           SELECT flight_date AS day, carrier AS line, on_time_rate AS value
           FROM marts.carrier_daily_performance JOIN top USING (carrier)
           WHERE on_time_rate IS NOT NULL ORDER BY ALL""",
        7,
    ),
    "origin_daily_weather_delays": (
        "Mean departure delay by airport, minutes, 7-day mean",
        "minutes",
        """SELECT flight_date AS day, origin AS line, mean_dep_delay AS value
           FROM marts.origin_daily_weather_delays WHERE mean_dep_delay IS NOT NULL
           ORDER BY ALL""",
        7,
    ),
}


def series(conn: duckdb.DuckDBPyConnection, mart: str) -> pd.DataFrame:
    """The mart's daily series: a column per line, a row per day (each the mean of the days up to
    it, where the chart averages several)."""
    _title, _ylabel, sql, days = CHARTS[mart]
    long: pd.DataFrame = conn.execute(sql).df()
    if long.empty:
        return pd.DataFrame()
    wide: pd.DataFrame = long.pivot_table(index="day", columns="line", values="value")
    return wide.sort_index().rolling(days, min_periods=1).mean()


def render(
    frame: pd.DataFrame,
    title: str,
    ylabel: str,
    width: float = 8.0,
    height: float = 3.2,
    dpi: int = 90,
) -> bytes:
    """A line chart of the frame's columns over its index, as PNG bytes."""
    out = io.BytesIO()
    figure(frame, title, ylabel, width, height, dpi).savefig(out, format="png")
    return out.getvalue()


def figure(
    frame: pd.DataFrame, title: str, ylabel: str, width: float, height: float, dpi: int
) -> Figure:
    """The chart `render` draws: a line per column, a tick a day over a short span."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only, in any thread
    from matplotlib.figure import Figure

    drawn = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    axes = drawn.subplots()
    if frame.empty:
        axes.text(0.5, 0.5, "no days yet", ha="center", va="center", transform=axes.transAxes)
    for column in frame.columns:
        axes.plot(frame.index, frame[column], linewidth=1.0, label=str(column))
    axes.set_title(title, fontsize=11)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(frame.columns) > 1:
        axes.legend(fontsize=8, ncol=min(len(frame.columns), 6), loc="upper left")
    if len(frame) and frame.index.max() - frame.index.min() < pd.Timedelta(days=14):
        # each point is a day: a tick on each, never the hours between them
        axes.set_xticks(list(frame.index), [f"{day:%Y-%m-%d}" for day in frame.index])
    drawn.autofmt_xdate()
    return drawn


def chart(conn: duckdb.DuckDBPyConnection, mart: str, draw: Callable[..., bytes] = render) -> bytes:
    """The mart's daily series drawn as a PNG."""
    title, ylabel, _sql, _days = CHARTS[mart]
    return draw(series(conn, mart), title, ylabel)
