"""Ledger benchmark: CSV import throughput and the monthly SC3.2 report on 500 k interactions.

Prints one JSON object. Runs on SQLite (WAL, synchronous=FULL) and on a throwaway
PostgreSQL server started here (initdb + pg_ctl in a temporary directory, fsync on). The
month is generated from a fixed seed, so every run measures the same rows.

    .venv/bin/python benchmarks/billing.py [--interactions 500000] [--budget-s 900]

Targets: import >= 20 000 rows/s, month report <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL server of the tests

from throwaway_pg import ThrowawayPostgres  # noqa: E402

from bot import settings as settings_module  # noqa: E402
from ledger.api import Ledger  # noqa: E402
from ledger.csv_io import HEADER, import_csv  # noqa: E402
from ledger.months import Month  # noqa: E402
from ledger.reports import judge_month, render_sc32  # noqa: E402

SEED = 3230
MONTH = Month(2024, 3)  # holds the spring-forward night
TARGETS = {"import_rows_per_s_min": 20_000, "report_s_max": 5.0}
MOTIFS = ("aide_logement", "rsa", "prime_activite", "mdp_oublie", "attestation",
          "date_paiement", "changement_situation", "suivi_demande", "conseiller", "hors_sujet")
PARIS = ZoneInfo("Europe/Paris")


def generate(path: Path, interactions: int, seed: int = SEED) -> int:
    """Write a month of bot interactions plus ~10 % advisor contacts; returns the row count.

    Callers come from a pool so that many call several times a day (rule 3 has work to do),
    8 % are withheld, numbers are written in the several formats platforms use.
    """
    rng = random.Random(seed)
    days = MONTH.days()
    callers = [f"06{rng.randrange(10**8):08d}" for _ in range(max(1, interactions // 4))]
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for i in range(interactions):
            day = days[i % len(days)]
            start = datetime(day.year, day.month, day.day, 8, 0, tzinfo=PARIS) + timedelta(
                milliseconds=rng.randrange(12 * 3_600_000))
            duration_ms = rng.randrange(20_000, 600_000)
            message_ms = rng.randrange(0, 60_000)
            listened_ms = message_ms if rng.random() < 0.7 else rng.randrange(message_ms + 1)
            number = _formatted(rng, callers[rng.randrange(len(callers))])
            handoff = rng.random() < 0.12
            out.write(f"b{i},bot,{number},{_iso(start)},"
                      f"{_iso(start + timedelta(milliseconds=duration_ms))},"
                      f"{MOTIFS[rng.randrange(len(MOTIFS))]},{_seconds(message_ms)},"
                      f"{_seconds(listened_ms)},{'true' if handoff else 'false'}\n")
            rows += 1
            if rng.random() < 0.1:
                later = start + timedelta(minutes=rng.randrange(1, 240))
                out.write(f"a{i},advisor,{number},{_iso(later)},"
                          f"{_iso(later + timedelta(minutes=5))},,,,\n")
                rows += 1
    return rows


def _formatted(rng: random.Random, national: str) -> str:
    roll = rng.random()
    if roll < 0.08:
        return "anonymous"
    if roll < 0.5:
        return national
    if roll < 0.8:
        return "+33" + national[1:]
    return " ".join(national[j:j + 2] for j in range(0, 10, 2))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def measure(settings, url: str | None, csv_path: Path, rows: int, deadline: float) -> dict:
    ledger = Ledger.open(settings, url, require_database=True, replay_spool=False)
    try:
        start = time.perf_counter()
        result = import_csv(ledger, csv_path)
        import_s = time.perf_counter() - start
        assert result.inserted == rows, (result.inserted, rows)
        if time.monotonic() > deadline:
            return {"import_rows": rows, "import_s": round(import_s, 2),
                    "import_rows_per_s": round(rows / import_s), "report": "skipped: budget"}
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            text = render_sc32(judge_month(ledger, MONTH), "csv")
            timings.append(time.perf_counter() - start)
        total = text.splitlines()[-1].split(",")
        return {
            "import_rows": rows, "import_s": round(import_s, 2),
            "import_rows_per_s": round(rows / import_s),
            "report_interactions": int(total[1]), "report_productive": int(total[2]),
            "report_productive_hours": total[4],
            "report_s": round(min(timings), 3), "report_s_runs": [round(t, 3) for t in timings],
        }
    finally:
        ledger.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=500_000)
    parser.add_argument("--budget-s", type=float, default=900.0,
                        help="stop before a new phase once this much time has passed")
    parser.add_argument("--skip-postgresql", action="store_true")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget_s

    report: dict = {"seed": SEED, "month": str(MONTH), "interactions": args.interactions,
                    "targets": TARGETS, "cpus": os.cpu_count(),
                    "load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        tmp_path = Path(tmp)
        csv_path = tmp_path / "month.csv"
        start = time.perf_counter()
        rows = generate(csv_path, args.interactions)
        report["generate_s"] = round(time.perf_counter() - start, 2)
        report["rows_with_advisor_contacts"] = rows
        report["csv_mib"] = round(csv_path.stat().st_size / 2**20, 1)
        settings = settings_module.replace(settings_module.load(env={}),
                                           paths={"state_dir": tmp_path / "state"})

        report["sqlite"] = measure(settings, f"sqlite:///{tmp_path / 'bench.sqlite'}",
                                   csv_path, rows, deadline)
        if args.skip_postgresql:
            report["postgresql"] = "skipped"
        elif time.monotonic() > deadline:
            report["postgresql"] = "skipped: budget"
        else:
            with ThrowawayPostgres(fsync=True) as pg:
                report["postgresql"] = measure(settings, pg.create_database("bench"), csv_path,
                                               rows, deadline)

    backends = [report[k] for k in ("sqlite", "postgresql") if isinstance(report[k], dict)]
    report["ok"] = all(
        b["import_rows_per_s"] >= TARGETS["import_rows_per_s_min"]
        and isinstance(b.get("report_s"), float) and b["report_s"] <= TARGETS["report_s_max"]
        for b in backends)
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
