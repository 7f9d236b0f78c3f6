"""What the calls of one round (or of the soak) got, for the JSON report.

Per question: the phone-side reply (``phone_timing.measure_turn``), the engine's turn for
it (paired by the engine's own end of speech: the turn line's instant minus its response
time, which falls within the question's stretch of the script however late the reply
came), what was understood (action, motif, and the transcript from ``voicebot ledger
transcript``) against ``voicebot ask --audio`` offline. Per round: percentiles, the
ledger rows matched by SIP Call-ID, CPU, memory, and how far the timing can be trusted.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from call_place import Bench, Call
from call_script import LINE_RATE
from node_watch import Window
from phone_timing import LOUD_DBFS, Timeline, frame_dbfs, measure_turn, split_with_log, summary
from sip_load import Node


def _transcript_turns(text: str | None) -> list[str]:
    """The caller's utterances that got a reply, in order, from a ledger transcript."""
    if not text:
        return []
    lines = text.splitlines()
    return [line.split(":", 1)[1].strip() for i, line in enumerate(lines)
            if line.startswith("Appelant") and i + 1 < len(lines)
            and lines[i + 1].startswith("Bot")]


def _norm(text: str | None) -> str:
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in text or "").split())


def analyse(bench: Bench, call: Call, turns: list[dict], transcript: str | None) -> list[dict]:
    """Per question: phone-side reply, the engine's turn line, what was understood."""
    rec, enc, dec = call.record, call.enc, call.dec
    heard = _transcript_turns(transcript)
    for i, turn in enumerate(turns):
        turn["transcript"] = heard[i] if i < len(heard) else None
    by_file = {q["file"]: q for q in bench.questions}
    out = []
    asked = call.script["questions"]
    previous_end = None
    for k, q in enumerate(asked):
        row: dict = {"question": q["file"]}
        if enc is None or dec is None:
            row["phone"] = {"error": "no audio dumps"}
        else:
            row["phone"] = measure_turn(enc, dec, q["start"], q["speech_end"], q["samples"],
                                        previous_end)
            previous_end = row["phone"].get("_dec_frame_at_end")
        # the engine's turns that heard this question: its end of speech (the turn line's
        # instant minus its response time) falls after this question started and before
        # the next one did, however late the reply came
        start = _sent_at(enc, q["start"], rec)
        end = _sent_at(enc, asked[k + 1]["start"], rec) if k + 1 < len(asked) else None
        mine = [t for t in turns if start is not None
                and start <= t["seen_at"] - t["response_ms"] / 1000
                and (end is None or t["seen_at"] - t["response_ms"] / 1000 < end)]
        row["engine_turns"] = len(mine)
        if mine:
            t = mine[-1]
            row["in_service"] = {key: t[key] for key in ("response_ms", "asr_ms", "tts_ms")}
            split_with_log(row["phone"], t["seen_at"], t["response_ms"])
            if "reply_ms" in row["phone"]:
                row["phone_minus_service_ms"] = row["phone"]["reply_ms"] - t["response_ms"]
            offline = by_file[q["file"]]["offline"]
            row["understood"] = {"transcript": t.get("transcript"), "action": t["action"],
                                 "motif": t["motif"], "confidence": t["confidence"]}
            row["same_as_offline"] = {
                "action_motif": (t["action"], t["motif"]) == (offline["action"],
                                                              offline["motif"]),
                "transcript": (None if t.get("transcript") is None
                               else _norm(t["transcript"]) == _norm(offline["transcript"]))}
        for key in [key for key in row["phone"] if key.startswith("_")]:
            del row["phone"][key]
        out.append(row)
    return out


def _sent_at(enc: Timeline | None, sample: int, rec: dict) -> float | None:
    if enc is not None and enc.clocked:
        when = enc.written(sample)
        if when is not None:
            return when[1]
    if "established_at" in rec:
        return rec["established_at"] + sample / LINE_RATE
    return None


def call_timing(call: Call) -> dict:
    """The dumps' clocks for one call: their start offset, steadiness, the greeting."""
    enc, dec = call.enc, call.dec
    if enc is None or dec is None or not (enc.clocked and dec.clocked):
        return {"clocked": False}
    out: dict = {"clocked": True, "dec_start_after_enc_ms": round(1000 * (dec.start()
                                                                          - enc.start())),
                 "enc_spread_ms": enc.spread_ms(), "dec_spread_ms": dec.spread_ms()}
    loud = [i for i, db in enumerate(frame_dbfs(dec.audio)) if db >= LOUD_DBFS]
    if loud:
        when = dec.written(loud[0] * dec.rate // 50)
        if when is not None:
            out["first_bot_audio_after_call_audio_start_ms"] = round(
                1000 * ((when[0] + when[1]) / 2 - enc.start()))
    return out


def months_between(t0: float, t1: float) -> list[str]:
    zone = ZoneInfo("Europe/Paris")
    return sorted({datetime.fromtimestamp(t, zone).strftime("%Y-%m") for t in (t0, t1)})


async def ledger_check(node: Node, call_ids: list[str], since_wall: float,
                       timeout_s: float = 30.0) -> dict:
    """One row per call, matched by SIP Call-ID (rows are written as calls end: poll the
    ledger, another process's database, until they are all there or the deadline)."""
    deadline = time.monotonic() + timeout_s
    months = months_between(since_wall, time.time())
    while True:
        rows = await asyncio.to_thread(node.ledger_rows, months)
        missing = [c for c in call_ids if c not in rows]
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)  # polling a database another process writes
    wanted = set(call_ids)
    return {"calls": len(call_ids), "rows_matched": sum(1 for c in call_ids if c in rows),
            "missing": missing, "duplicated": [c for c in call_ids if len(rows.get(c, [])) > 1],
            "rows_of_other_calls": sorted(c for c, found in rows.items() if c not in wanted
                                          and any(_started(r) >= since_wall - 1 for r in found)),
            "motifs": count(r["motif"] for c in call_ids for r in rows.get(c, [])),
            "_rows": rows}


def _started(row: dict[str, str]) -> float:
    try:
        return datetime.fromisoformat(row["started_at"]).timestamp()
    except (KeyError, ValueError):
        return float("inf")  # unreadable: counted, not hidden


def count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def summarise_call(bench: Bench, call: Call, turns: list[dict], transcript: str | None,
                   details: bool = True) -> tuple[dict, list[dict]]:
    """One call's line in the report and its questions' rows; its audio is dropped after."""
    cid = call.record.get("call_id")
    rows = analyse(bench, call, turns, transcript)
    item = {"index": call.index, "call_id": cid,
            **{k: call.record[k] for k in ("answer_ms", "duration_s", "completed",
                                           "transferred", "closed_by", "error", "sip")
               if k in call.record},
            "timing": call_timing(call)}
    if details:
        item["questions"] = rows
    call.enc = call.dec = None
    return item, rows


def turns_by_call(node: Node, since_line: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for t in node.turns(since_line):
        out.setdefault(t["call_id"], []).append(t)
    return out


async def aggregate(bench: Bench, items: list[dict], questions: list[dict],
                    turns: dict[str, list[dict]], since_line: int, since_wall: float,
                    window: Window, cpu: dict, head: dict) -> dict:
    node = bench.node
    ids = [i["call_id"] for i in items if i["call_id"]]
    ledger = await ledger_check(node, ids, since_wall)
    for item in items:
        item["ledger_rows"] = len(ledger["_rows"].get(item["call_id"], [])) \
            if item["call_id"] else 0
    replied = [q for q in questions if "reply_ms" in q["phone"]]
    engine = [q["in_service"] for q in questions if "in_service" in q]
    return {
        **head,
        "calls_established": len(ids),
        "calls_completed": sum(1 for i in items if i.get("completed")),
        "calls_transferred": sum(1 for i in items if i.get("transferred")),
        "questions": len(questions),
        "questions_replied_phone": len(replied),
        "questions_with_engine_turn": len(engine),
        "reply_ms_phone": summary([q["phone"]["reply_ms"] for q in replied]),
        "response_ms_in_service": summary([e["response_ms"] for e in engine]),
        "phone_minus_service_ms": summary([q["phone_minus_service_ms"] for q in questions
                                           if "phone_minus_service_ms" in q]),
        "asr_ms": summary([e["asr_ms"] for e in engine]),
        "non_asr_ms": summary([e["response_ms"] - e["asr_ms"] for e in engine]),
        "understood": understood(questions),
        "ledger": {k: v for k, v in ledger.items() if k != "_rows"},
        "cpu": cpu,
        "memory": bench.watch.memory(window.started, time.monotonic()),
        "timing_check": timing_check(questions, [i["timing"] for i in items]),
        "turns_of_other_calls": sum(len(v) for k, v in turns.items() if k not in set(ids)),
        "node_warnings": node.problems(since_line)[:20],
        "calls_detail": items,
    }


def understood(questions: list[dict]) -> dict:
    """Per recording: what the live bot made of it (action, motif, transcript when read
    from the ledger), how often, and how often it agreed with the offline reading."""
    out: dict[str, dict] = {}
    for q in questions:
        item = out.setdefault(q["question"], {"asked": 0, "same_action_motif": 0,
                                              "transcripts_read": 0, "same_transcript": 0,
                                              "live": {}})
        item["asked"] += 1
        if "understood" not in q:
            item["live"]["(no engine turn)"] = item["live"].get("(no engine turn)", 0) + 1
            continue
        u = q["understood"]
        key = f"{u['action']} {u['motif']}"
        if u["transcript"] is not None:
            key += f" « {u['transcript']} »"
            item["transcripts_read"] += 1
            item["same_transcript"] += bool(q["same_as_offline"]["transcript"])
        item["live"][key] = item["live"].get(key, 0) + 1
        item["same_action_motif"] += q["same_as_offline"]["action_motif"]
    return out


def timing_check(questions: list[dict], timings: list[dict]) -> dict:
    """How far the phone-side figure can be trusted, from this round's own measurements.

    A dump's spread is how far its writes strayed from one steady real-time clock: about
    one sampling interval when the stream flows evenly. The sent dump's says whether the
    phones and this benchmark kept time; the received dump's shows every stall of the
    node's RTP (all calls stalling together: the node stopped sending for that long).
    ``clocked_minus_by_position_ms`` is what reading sample positions alone gets wrong."""
    phone = [q["phone"] for q in questions if "reply_ms" in q["phone"]]
    clocked = [t for t in timings if t.get("clocked")]
    return {
        "plus_minus_ms": summary([p["plus_minus_ms"] for p in phone if "plus_minus_ms" in p]),
        "dec_start_after_enc_ms": summary([t["dec_start_after_enc_ms"] for t in clocked]),
        "clocked_minus_by_position_ms": summary([p["reply_ms"] - p["by_position_ms"]
                                                 for p in phone if "plus_minus_ms" in p]),
        "sent_dump_spread_ms": summary([t["enc_spread_ms"] for t in clocked
                                        if t["enc_spread_ms"] is not None]),
        "received_dump_spread_ms": summary([t["dec_spread_ms"] for t in clocked
                                            if t["dec_spread_ms"] is not None]),
        "question_end_vs_script_ms": summary([p["end_vs_script_ms"] for p in phone]),
        "uplink_ms": summary([p["uplink_ms"] for p in phone if "uplink_ms" in p]),
        "downlink_ms": summary([p["downlink_ms"] for p in phone if "downlink_ms" in p]),
        "bot_floor_dbfs_max": max((p["floor_dbfs"] for p in phone
                                   if p.get("floor_dbfs") is not None), default=None),
        "first_bot_audio_after_call_audio_start_ms": summary(
            [t["first_bot_audio_after_call_audio_start_ms"] for t in clocked
             if "first_bot_audio_after_call_audio_start_ms" in t]),
        "not_measured": [f"{q['question']}: {q['phone']['error']}" for q in questions
                         if "error" in q["phone"]][:20],
    }


