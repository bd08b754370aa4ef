"""Synthetic BitMEX daily trade dumps, for running the volume example offline.

Writes `YYYYMMDD.csv.gz` files in the exact layout of BitMEX's public daily trade dumps
(https://public.bitmex.com/data/trade/YYYYMMDD.csv.gz):

    timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional
    2020-01-01D00:00:05.591283000,XBTUSD,Sell,139,7173.0,ZeroPlusTick,6d53...,1937888,0.01937888,139

Each day's data is deterministic (seeded by its date), so every day has a known volume that
tests can check against: `expected_volume("20200101")`.

    python trades.py data 20200101 20200110    # writes data/20200101.csv.gz ... 20200110
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

# symbol: (share of trades, typical price, price volatility, tick size)
SYMBOLS = {
    "XBTUSD": (0.55, 7200.0, 0.01, 0.5),
    "ETHUSD": (0.25, 130.0, 0.015, 0.05),
    "XRPUSD": (0.08, 0.19, 0.02, 0.00001),
    "XBTH20": (0.07, 7300.0, 0.01, 0.5),
    "ETHH20": (0.05, 0.0181, 0.01, 0.00001),
}
TICKS = ["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"]


def _arrays(date: str) -> dict[str, np.ndarray]:
    day = dt.datetime.strptime(date, "%Y%m%d")
    rng = np.random.default_rng(int(date))
    rows = int(rng.integers(30_000, 60_000))
    names = list(SYMBOLS)
    symbol = rng.choice(len(names), size=rows, p=[SYMBOLS[n][0] for n in names])
    base = np.array([SYMBOLS[n][1] for n in names])[symbol]
    vol = np.array([SYMBOLS[n][2] for n in names])[symbol]
    tick = np.array([SYMBOLS[n][3] for n in names])[symbol]
    price = np.round(base * np.exp(rng.normal(0, 1, rows) * vol) / tick) * tick
    # Order sizes: mostly small, a heavy tail of large ones, in whole contracts.
    size = np.maximum(1, np.round(rng.lognormal(5.0, 1.6, rows))).astype(np.int64)
    nanos = np.sort(rng.integers(0, 86_400 * 10**9, rows))
    return {
        "day": np.array(day),
        "names": np.array(names),
        "symbol": symbol,
        "price": price,
        "size": size,
        "nanos": nanos,
        "side": rng.integers(0, 2, rows),
        "tick_direction": rng.integers(0, 4, rows),
        "ids": rng.integers(0, 2**63, (rows, 2), dtype=np.int64),
    }


def trades_for(date: str) -> pd.DataFrame:
    """One day of synthetic trades, as BitMEX's dump would hold them."""
    a = _arrays(date)
    day = pd.Timestamp(a["day"].item())
    stamps = (day + pd.to_timedelta(a["nanos"], unit="ns")).strftime("%Y-%m-%dD%H:%M:%S.%f")
    price = np.round(a["price"], 8)
    size = a["size"]
    home = size / price
    return pd.DataFrame(
        {
            "timestamp": [s + "000" for s in stamps],
            "symbol": a["names"][a["symbol"]],
            "side": np.where(a["side"] == 1, "Buy", "Sell"),
            "size": size,
            "price": price,
            "tickDirection": np.array(TICKS)[a["tick_direction"]],
            "trdMatchID": [
                str(uuid.UUID(int=(int(hi) << 64) | int(lo)))
                for hi, lo in a["ids"].astype(np.uint64)
            ],
            "grossValue": np.round(home * 1e8).astype(np.int64),
            "homeNotional": np.round(home, 8),
            "foreignNotional": size,
        }
    )


def expected_volume(date: str, symbol: str = "XBTUSD") -> int:
    """The day's total traded size for `symbol`, computed from the generator itself."""
    a = _arrays(date)
    wanted = list(a["names"]).index(symbol)
    return int(a["size"][a["symbol"] == wanted].sum())


def write_day(folder: Path, date: str) -> Path:
    """Write one day's dump (skipped if it is already there)."""
    path = folder / f"{date}.csv.gz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        trades_for(date).to_csv(partial, index=False, compression="gzip")
        partial.rename(path)
    return path


def days(first: str, last: str) -> list[str]:
    start, end = (dt.datetime.strptime(d, "%Y%m%d") for d in (first, last))
    return [(start + dt.timedelta(n)).strftime("%Y%m%d") for n in range((end - start).days + 1)]


if __name__ == "__main__":
    folder, first, last = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    for date in days(first, last):
        print(write_day(folder, date))
