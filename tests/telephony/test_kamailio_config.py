"""The dispatcher's generated files, read as text and checked by ``kamailio -c`` (nothing runs)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot import settings as settings_module
from telephony_adapter.kamailio import find_kamailio
from telephony_adapter.kamailio_config import (
    Destination,
    DispatcherConfig,
    KamailioError,
    node_destination,
)
from telephony_adapter.kamailio_render import render_config, render_dispatcher_list


def config(tmp_path: Path, **changes) -> DispatcherConfig:
    destinations = changes.pop("destinations", (Destination("sip:127.0.0.1:5061"),
                                                Destination("sip:127.0.0.1:5062")))
    return DispatcherConfig(destinations=destinations, runtime_dir=tmp_path, **changes)


def kamailio_check(tmp_path: Path, cfg: DispatcherConfig) -> str:
    cfg.cfg_path.write_text(render_config(cfg))
    cfg.list_path.write_text(render_dispatcher_list(cfg))
    done = subprocess.run([str(find_kamailio()), "-c", "-f", str(cfg.cfg_path)],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("changes", [
    {},
    {"edge": False},
    {"transports": ("udp",)},
    {"destinations": ()},
    {"destinations": (Destination("sip:10.0.0.11:5060", weight=70),
                      Destination("sip:10.0.0.12:5060;transport=tcp", weight=30))},
])
def test_every_variant_is_accepted_by_kamailio(tmp_path, changes):
    output = kamailio_check(tmp_path, config(tmp_path, **changes))
    assert "config file ok" in output.lower()


def test_the_list_is_written_last_first_so_kamailio_keeps_the_given_order(tmp_path):
    cfg = config(tmp_path, destinations=(
        Destination("sip:127.0.0.1:5061"), Destination("sip:127.0.0.1:5062", priority=5),
        Destination("sip:127.0.0.1:5063")))
    rows = [line for line in render_dispatcher_list(cfg).splitlines()
            if not line.startswith("#")]
    assert rows == ["1 sip:127.0.0.1:5063 8 0", "1 sip:127.0.0.1:5062 8 5",
                    "1 sip:127.0.0.1:5061 8 0"]


def test_weights_switch_to_weight_based_selection(tmp_path):
    cfg = config(tmp_path, destinations=(Destination("sip:10.0.0.11:5060", weight=60),
                                         Destination("sip:10.0.0.12:5060", weight=40)))
    assert cfg.algorithm == 9
    assert 'ds_select_dst("1", "9")' in render_config(cfg)
    assert "1 sip:10.0.0.11:5060 8 0 weight=60" in render_dispatcher_list(cfg)
    assert config(tmp_path).algorithm == 4


def test_only_the_edge_defines_the_unconditional_last_resort(tmp_path):
    edge = render_config(config(tmp_path, edge=True))
    node = render_config(config(tmp_path, edge=False))
    assert "\n#!define ALLOCAF_EDGE\n" in edge
    assert "#!define ALLOCAF_EDGE" not in node
    assert 'append_hf("X-Allo-Last-Resort: 1\\r\\n")' in node


def test_timings_codes_and_paths_reach_the_config(tmp_path):
    text = render_config(config(tmp_path, failover_timeout_ms=1800, answer_timeout_ms=20000,
                                probe_interval_s=3, failover_codes=(503, 486, 408)))
    assert 'modparam("tm", "fr_timer", 1800)' in text
    assert 'modparam("tm", "fr_inv_timer", 20000)' in text
    assert 'modparam("dispatcher", "ds_ping_interval", 3)' in text
    assert '#!define FAILOVER_CODES "^(408|486|503)$"' in text
    assert f'modparam("jsonrpcs", "dgram_socket", "{tmp_path}/rpc.sock")' in text
    assert f'modparam("ctl", "binrpc", "unix:{tmp_path}/ctl.sock")' in text
    assert f'modparam("dispatcher", "list_file", "{tmp_path}/dispatcher.list")' in text
    assert "listen=udp:127.0.0.1:5060\nlisten=tcp:127.0.0.1:5060\n" in text
    assert "record_route" not in text
    assert re.findall(r"\{[a-z_]+\}", text) == []  # every placeholder filled


def test_weights_must_cover_every_destination_and_add_up_to_100(tmp_path):
    with pytest.raises(KamailioError) as caught:
        config(tmp_path, destinations=(Destination("sip:10.0.0.11:5060", weight=60),
                                       Destination("sip:10.0.0.12:5060")))
    assert str(caught.value).splitlines()[1:] == [
        "  - weight : donnez un poids à toutes les destinations ou à aucune."]
    with pytest.raises(KamailioError) as caught:
        config(tmp_path, destinations=(Destination("sip:10.0.0.11:5060", weight=60),
                                       Destination("sip:10.0.0.12:5060", weight=60)))
    assert str(caught.value).splitlines()[1:] == [
        "  - weight : la somme des poids vaut 120, elle doit valoir 100."]


def test_a_runtime_dir_too_long_for_a_unix_socket_is_refused(tmp_path):
    long_dir = tmp_path / ("x" * 90)
    with pytest.raises(KamailioError) as caught:
        config(long_dir)
    assert "chemin trop long pour une socket Unix" in str(caught.value)


def test_node_addresses_accept_host_port_or_a_sip_uri():
    assert node_destination("10.0.0.11:5060") == Destination("sip:10.0.0.11:5060")
    assert node_destination("sip:10.0.0.12:5070") == Destination("sip:10.0.0.12:5070")
    with pytest.raises(KamailioError) as caught:
        node_destination("10.0.0.11")
    assert str(caught.value) == (
        "Adresse de nœud invalide : « 10.0.0.11 ». Attendu : HÔTE:PORT "
        "(par exemple 127.0.0.1:5070) ou sip:HÔTE:PORT.")


def test_balancer_nodes_come_from_the_environment():
    settings = settings_module.load(env={"VOICEBOT_BALANCER_NODES": "10.0.0.11:5060,10.0.0.12:5060",
                                         "VOICEBOT_BALANCER_SIP_PORT": "5090"})
    assert settings.balancer.nodes == ("10.0.0.11:5060", "10.0.0.12:5060")
    assert settings.balancer.sip_port == 5090


def test_the_listen_address_must_be_a_precise_ip(tmp_path):
    with pytest.raises(KamailioError) as caught:
        config(tmp_path, listen_host="0.0.0.0")
    assert str(caught.value).splitlines()[1:] == [
        "  - listen_host « 0.0.0.0 » : l'adresse IP précise à laquelle le SBC envoie les "
        "appels est attendue (127.0.0.1, 10.0.0.5…), pas 0.0.0.0 ni un nom."]
