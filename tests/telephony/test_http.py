"""The health and metrics endpoint, over real HTTP, around a real SIP call."""

from __future__ import annotations

import asyncio

import aiohttp
from test_sip_calls import RecordingHandler

from telephony_adapter.http import (
    PROMETHEUS_CONTENT_TYPE,
    CallMetrics,
    HealthServer,
    service_health,
)


class Status:
    active_calls = 2
    draining = False


def test_metrics_render_counters_and_a_cumulative_histogram():
    metrics = CallMetrics(buckets_ms=(500, 1500))
    metrics.count_call("answered")
    metrics.count_call("answered")
    metrics.count_call("handoff")
    metrics.count_transfer("busy")
    for response_ms in (300, 500, 900, 4000):
        metrics.observe_response_ms(response_ms)
    assert metrics.render(Status()).splitlines()[2:] == [
        "allo_caf_calls_in_progress 2",
        "# HELP allo_caf_draining 1 while the node refuses new calls before stopping.",
        "# TYPE allo_caf_draining gauge",
        "allo_caf_draining 0",
        "# HELP allo_caf_calls_total Finished calls by outcome.",
        "# TYPE allo_caf_calls_total counter",
        'allo_caf_calls_total{outcome="answered"} 2',
        'allo_caf_calls_total{outcome="handoff"} 1',
        "# HELP allo_caf_transfers_total Transfers to an advisor by outcome.",
        "# TYPE allo_caf_transfers_total counter",
        'allo_caf_transfers_total{outcome="busy"} 1',
        "# HELP allo_caf_response_seconds From the end of the caller's turn to the bot's answer.",
        "# TYPE allo_caf_response_seconds histogram",
        'allo_caf_response_seconds_bucket{le="0.5"} 2',
        'allo_caf_response_seconds_bucket{le="1.5"} 3',
        'allo_caf_response_seconds_bucket{le="+Inf"} 4',
        "allo_caf_response_seconds_sum 5.7",
        "allo_caf_response_seconds_count 4",
    ]


def test_health_and_metrics_follow_the_calls_and_the_drain(world, greeting):
    handler = RecordingHandler(greeting)
    metrics = CallMetrics()

    async def get(session, url):
        async with session.get(url) as response:
            return response.status, response.headers["Content-Type"], await response.text()

    async def scenario():
        endpoint = await world.endpoint(handler)
        async def metrics_text() -> str:
            return metrics.render(endpoint)

        server = HealthServer("127.0.0.1", 0, service_health(endpoint), metrics_text)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        _, wav = world.caller_audio(8000, total_s=5.0)
        phone = await world.phone("caller", source=wav)
        async with aiohttp.ClientSession() as session:
            idle = await get(session, f"{base}/health")
            await phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
            await phone.wait_event("CALL_ESTABLISHED")
            busy = await get(session, f"{base}/health")
            busy_metrics = await get(session, f"{base}/metrics")
            metrics.count_call("answered")
            stopping = asyncio.create_task(endpoint.stop(grace_ms=20000))
            await asyncio.sleep(0)  # let stop() start draining
            draining = await get(session, f"{base}/health")
            await asyncio.wait_for(stopping, 20)
            world.endpoints.remove(endpoint)
            final_metrics = await get(session, f"{base}/metrics")
        await server.stop()
        return idle, busy, busy_metrics, draining, final_metrics

    idle, busy, busy_metrics, draining, final_metrics = world.run(scenario())
    assert idle == (200, "application/json; charset=utf-8",
                    '{"status": "ok", "calls_in_progress": 0, "draining": false}')
    assert busy[2] == '{"status": "ok", "calls_in_progress": 1, "draining": false}'
    assert busy_metrics[:2] == (200, PROMETHEUS_CONTENT_TYPE)
    assert "allo_caf_calls_in_progress 1\n" in busy_metrics[2]
    assert draining == (503, "application/json; charset=utf-8",
                        '{"status": "draining", "calls_in_progress": 1, "draining": true}')
    assert "allo_caf_calls_in_progress 0\n" in final_metrics[2]
    assert 'allo_caf_calls_total{outcome="answered"} 1\n' in final_metrics[2]
