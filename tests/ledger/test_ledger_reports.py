"""Reports on tests/data/ledger/march_2024.csv, whose expected figures were worked out by hand
(see tests/data/ledger/README.md for the reasoning behind every line)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from ledger_builders import DATA, SC32_MARCH, ledger_settings_for

from bot.errors import VoicebotError
from ledger import Ledger
from ledger.csv_io import import_csv
from ledger.months import Month
from ledger.orders import month_orders, parse_hours, set_order
from ledger.reports import (
    daily_series,
    judge_month,
    render_detail,
    render_motif_report,
    render_sc32,
)

MARCH = Month(2024, 3)


SC32_MARCH_STRICT = """\
date,interactions,productive,productive_seconds,productive_hours
2024-03-01,6,2,330.500,0.0918
2024-03-02,3,2,360.000,0.1000
2024-03-15,3,1,1.234,0.0003
2024-03-31,2,2,360.001,0.1000
total,14,7,1051.735,0.2921
"""

DAILY_MARCH = """\
period,motif,interactions,productive,productive_seconds,productive_hours,ordered_hours,\
billable_hours,ratio_percent,days_under_95
2024-03-01,aide_logement,2,1,90.500,0.0251,,,,
2024-03-01,conseiller,1,0,0.000,0.0000,,,,
2024-03-01,date_paiement,1,1,240.000,0.0667,,,,
2024-03-01,rsa,2,0,0.000,0.0000,,,,
2024-03-01,total,6,2,330.500,0.0918,0.0900,0.0918,102.01,0
2024-03-02,attestation,1,1,60.000,0.0167,,,,
2024-03-02,mdp_oublie,1,1,300.000,0.0833,,,,
2024-03-02,prime_activite,1,0,0.000,0.0000,,,,
2024-03-02,total,3,2,360.000,0.1000,0.0800,0.0880,125.00,0
2024-03-15,au_revoir,1,1,1.234,0.0003,,,,
2024-03-15,hors_sujet,1,0,0.000,0.0000,,,,
2024-03-15,suivi_demande,1,1,100.000,0.0278,,,,
2024-03-15,total,3,2,101.234,0.0281,0.0500,0.0281,56.24,1
2024-03-20,total,0,0,0.000,0.0000,0.0100,0.0000,0.00,1
2024-03-31,aide_logement,1,1,300.001,0.0833,,,,
2024-03-31,date_paiement,1,1,60.000,0.0167,,,,
2024-03-31,total,2,2,360.001,0.1000,,0.0000,,0
total,total,14,8,1151.735,0.3199,0.2300,0.2079,139.10,2
"""

WEEKLY_TOTALS = [
    "2024-W09,total,9,4,690.500,0.1918,0.1700,0.1798,112.83,0",
    "2024-W11,total,3,2,101.234,0.0281,0.0500,0.0281,56.24,1",
    "2024-W12,total,0,0,0.000,0.0000,0.0100,0.0000,0.00,1",
    "2024-W13,total,2,2,360.001,0.1000,,0.0000,,0",
    "total,total,14,8,1151.735,0.3199,0.2300,0.2079,139.10,2",
]


@pytest.fixture
def march(any_ledger):
    import_csv(any_ledger, DATA / "march_2024.csv")
    return any_ledger


def place_orders(ledger):
    # In band (102 %), over 110 % (capped), under 95 %, ordered without activity.
    set_order(ledger, date(2024, 3, 1), parse_hours("0.09"), firm=True)
    set_order(ledger, date(2024, 3, 2), parse_hours("0.08"), firm=False)
    set_order(ledger, date(2024, 3, 15), parse_hours("0.05"), firm=True)
    set_order(ledger, date(2024, 3, 20), parse_hours("0.01"), firm=False)


# --- SC3.2 extraction ----------------------------------------------------------------------------
def test_sc32_csv_of_march(march):
    assert render_sc32(judge_month(march, MARCH), "csv") == SC32_MARCH


def test_sc32_april_holds_the_call_of_paris_april_first(march):
    # h1 starts 2024-03-31T22:00Z, which is already April 1st in Paris.
    assert render_sc32(judge_month(march, Month(2024, 4)), "csv").splitlines()[1:] == \
        ["2024-04-01,1,1,60.000,0.0167", "total,1,1,60.000,0.0167"]


def test_sc32_json(march):
    body = json.loads(render_sc32(judge_month(march, MARCH), "json"))
    assert list(body) == ["month", "timezone", "rule3", "rows"]
    assert (body["month"], body["timezone"], body["rule3"]) == \
        ("2024-03", "Europe/Paris", "later_advisor")
    assert [list(row) for row in body["rows"]] == \
        [["date", "interactions", "productive", "productive_seconds", "productive_hours"]] * 5
    assert body["rows"][0] == {"date": "2024-03-01", "interactions": 6, "productive": 2,
                               "productive_seconds": 330.5, "productive_hours": 0.0918}
    assert body["rows"][-1] == {"date": "total", "interactions": 14, "productive": 8,
                                "productive_seconds": 1151.735, "productive_hours": 0.3199}


def test_sc32_xml_mirrors_the_csv(march):
    root = ET.fromstring(render_sc32(judge_month(march, MARCH), "xml"))
    assert root.tag == "sc32" and root.attrib == {"month": "2024-03", "timezone": "Europe/Paris",
                                                  "rule3": "later_advisor"}
    lines = [",".join(child.text for child in row) for row in root.findall("row")]
    assert [",".join(child.tag for child in root.find("row"))] == [SC32_MARCH.splitlines()[0]]
    assert lines == SC32_MARCH.splitlines()[1:]


def test_strict_rule3_switch(state_dir, any_ledger):
    strict = Ledger.open(ledger_settings_for(state_dir, rule3_any_later_call=True),
                         any_ledger.url)
    try:
        import_csv(strict, DATA / "march_2024.csv")
        judged = judge_month(strict, MARCH)
        assert render_sc32(judged, "csv") == SC32_MARCH_STRICT
        assert judged.rule3 == "later_call"
    finally:
        strict.close()


def test_detail_gives_every_verdict_and_reason(march):
    rows = list(render_detail(judge_month(march, MARCH), march.calendar.tz))
    assert rows[0] == ("call_id", "date", "started_at", "ended_at", "duration_seconds",
                       "productive", "reason")
    reasons = {row[0]: (row[1], row[4], row[5], row[6]) for row in rows[1:]}
    assert reasons == {
        "a1": ("2024-03-01", "120.000", "false", "later_advisor"),
        "b1": ("2024-03-01", "180.000", "false", "listened_75"),
        "b2": ("2024-03-01", "60.000", "false", "later_advisor"),
        "b3": ("2024-03-01", "300.000", "false", "handoff"),
        "c1": ("2024-03-01", "240.000", "true", "productive"),
        "a2": ("2024-03-01", "90.500", "true", "productive"),
        "d1": ("2024-03-02", "60.000", "true", "productive"),
        "f1": ("2024-03-02", "120.000", "false", "later_advisor"),
        "e1": ("2024-03-02", "300.000", "true", "productive"),
        "k1": ("2024-03-15", "100.000", "true", "productive"),
        "i1": ("2024-03-15", "30.000", "false", "listened_75"),
        "j1": ("2024-03-15", "1.234", "true", "productive"),
        "g1": ("2024-03-31", "60.000", "true", "productive"),
        "g2": ("2024-03-31", "300.001", "true", "productive"),
    }


def test_empty_month_has_only_a_zero_total(march):
    assert render_sc32(judge_month(march, Month(2024, 2)), "csv").splitlines()[1:] == \
        ["total,0,0,0.000,0.0000"]


# --- by motif, with orders -----------------------------------------------------------------------
def test_daily_report_by_motif_with_orders(march):
    place_orders(march)
    assert render_motif_report(judge_month(march, MARCH), "daily", "csv") == DAILY_MARCH


def test_weekly_report_groups_iso_weeks(march):
    place_orders(march)
    lines = render_motif_report(judge_month(march, MARCH), "weekly", "csv").splitlines()
    assert [line for line in lines if ",total," in line] == WEEKLY_TOTALS
    assert "2024-W09,rsa,2,0,0.000,0.0000,,,," in lines


def test_monthly_report_xml(march):
    place_orders(march)
    root = ET.fromstring(render_motif_report(judge_month(march, MARCH), "monthly", "xml"))
    assert root.attrib == {"kind": "monthly", "month": "2024-03", "timezone": "Europe/Paris",
                           "rule3": "later_advisor"}
    [period] = root.findall("period")
    assert period.get("id") == "2024-03"
    motifs = {m.get("id"): m.attrib for m in period.findall("motif")}
    assert motifs["aide_logement"] == {"id": "aide_logement", "interactions": "3",
                                       "productive": "2", "productive_seconds": "390.501",
                                       "productive_hours": "0.1085"}
    assert root.find("total").attrib == {
        "interactions": "14", "productive": "8", "productive_seconds": "1151.735",
        "productive_hours": "0.3199", "ordered_hours": "0.2300", "billable_hours": "0.2079",
        "ratio_percent": "139.10", "days_under_95": "2"}


def test_every_interaction_has_a_motif_in_the_reports(march):
    lines = render_motif_report(judge_month(march, MARCH), "monthly", "csv").splitlines()[1:]
    motif_counts = [int(line.split(",")[2]) for line in lines if ",total," not in line]
    assert sum(motif_counts) == 14


# --- orders --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "ms"), [("12", 43_200_000), ("12.5", 45_000_000),
                                          ("0.0001", 360), ("7.1234", 25_644_240)])
def test_ordered_hours_are_exact(text, ms):
    assert parse_hours(text) == ms


@pytest.mark.parametrize("text", ["12,5", "-1", "1.23456", "douze", ""])
def test_bad_ordered_hours_are_refused_in_french(text):
    with pytest.raises(VoicebotError, match="Nombre d'heures"):
        parse_hours(text)


def test_firm_order_is_not_replaced_by_an_indicative_one(sqlite_ledger):
    day = date(2024, 3, 15)
    set_order(sqlite_ledger, day, parse_hours("10"), firm=False)
    set_order(sqlite_ledger, day, parse_hours("12"), firm=True)
    with pytest.raises(VoicebotError) as caught:
        set_order(sqlite_ledger, day, parse_hours("9"), firm=False)
    assert str(caught.value) == (
        "Une commande ferme existe déjà pour le 2024-03-15 (12 h) : une commande indicative "
        "ne la remplace pas. Ajoutez --firm pour la modifier.")
    set_order(sqlite_ledger, day, parse_hours("11.5"), firm=True)  # an amendment
    [current] = month_orders(sqlite_ledger, MARCH)
    assert (current.ordered_ms, current.firm) == (parse_hours("11.5"), True)
    history = month_orders(sqlite_ledger, MARCH, history=True)
    assert [(o.ordered_ms, o.firm) for o in history] == [
        (parse_hours("10"), False), (parse_hours("12"), True), (parse_hours("11.5"), True)]


# --- plot ----------------------------------------------------------------------------------------
def test_plot_draws_days_under_95_in_red(march, tmp_path):
    from matplotlib import image

    from ledger.plot import COLOURS, day_status, plot_month

    place_orders(march)
    series = daily_series(judge_month(march, MARCH))
    assert [day_status(p, o) for d, p, o in series if d.day in (1, 2, 15, 20, 31)] == \
        ["band", "over", "under", "under", "unordered"]
    out = tmp_path / "mars.png"
    plot_month(MARCH, series, out)
    pixels = image.imread(out)
    assert pixels.shape[:2] == (550, 1100)
    red = tuple(int(COLOURS["under"][i:i + 2], 16) / 255 for i in (1, 3, 5))
    assert ((abs(pixels[:, :, :3] - red) < 0.01).all(axis=2)).sum() > 500

    # Without orders no day is under 95 %: no red bar (the legend swatch aside).
    plot_month(MARCH, [(d, p, None) for d, p, _ in series], tmp_path / "sans.png")
    pixels = image.imread(tmp_path / "sans.png")
    assert ((abs(pixels[:, :, :3] - red) < 0.01).all(axis=2)).sum() < 300
