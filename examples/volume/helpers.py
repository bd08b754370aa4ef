"""Helpers the volume notebooks import (a plain module beside them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd


def daterange(month: str, start_day: int, end_day: int) -> list[str]:
    """Dates `YYYYMMDD` from `start_day` to `end_day` (inclusive) of `month` (`YYYYMM`)."""
    first = dt.datetime.strptime(f"{month}{start_day:02d}", "%Y%m%d")
    return [
        (first + dt.timedelta(days=n)).strftime("%Y%m%d") for n in range(end_day - start_day + 1)
    ]


def load_trades(location: str, date: str) -> pd.DataFrame:
    """Read one day's trades from `location` (a URL or path pattern with `{date}`).

    A local file that is not there yet is generated (synthetic data, see trades.py), so the
    notebooks run offline out of the box; with network, a URL pattern such as
    https://s3-eu-west-1.amazonaws.com/public.bitmex.com/data/trade/{date}.csv.gz reads the real
    dumps.
    """
    source = location.format(date=date)
    if "://" not in source:
        from trades import write_day

        path = Path(source)
        write_day(path.parent, date)
    return pd.read_csv(source)
