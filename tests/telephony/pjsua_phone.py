"""A second, scriptable SIP phone for what baresip 1.0 cannot do: send DTMF as SIP INFO
(``application/dtmf-relay``) and refuse a REFER (603), as platforms without transfer do.

It is pjsua2 in its own process, so the endpoint under test sees a separate SIP stack
over real sockets. Run as ``python pjsua_phone.py URI WAV [--info-digits 5#]
[--refuse-refer]``; it prints one JSON line per event (``ready``, ``confirmed``,
``info_sent``, ``refer_refused``, ``refer_followed``, ``disconnected``) and exits when the
call ends.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import pjsua2 as pj

_LIMIT_S = 60.0


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Phone(pj.Call):
    def __init__(self, account: pj.Account, wav: str, digits: str, refuse_refer: bool):
        super().__init__(account)
        self.wav, self.digits, self.refuse_refer = wav, digits, refuse_refer
        self.player: pj.AudioMediaPlayer | None = None
        self.done = False

    def onCallState(self, prm):  # noqa: N802
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            emit("confirmed")
            if self.digits:
                dtmf = pj.CallSendDtmfParam()
                dtmf.method, dtmf.digits = pj.PJSUA_DTMF_METHOD_SIP_INFO, self.digits
                self.sendDtmf(dtmf)
                emit("info_sent", digits=self.digits)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            emit("disconnected", status=info.lastStatusCode)
            self.done = True

    def onCallMediaState(self, prm):  # noqa: N802
        info = self.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if self.player is None:
                    self.player = pj.AudioMediaPlayer()
                    self.player.createPlayer(self.wav)
                    self.player.startTransmit(self.getAudioMedia(media.index))

    def onCallTransferRequest(self, prm):  # noqa: N802
        if self.refuse_refer:
            prm.statusCode = 603
            emit("refer_refused", target=prm.dstUri)
        else:  # pjsua follows it: a new call to the target, with the target's URI headers
            emit("refer_followed", target=prm.dstUri)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("uri")
    parser.add_argument("wav")
    parser.add_argument("--info-digits", default="")
    parser.add_argument("--refuse-refer", action="store_true")
    args = parser.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.logConfig.consoleLevel = 1
    config.logConfig.level = 1
    ep.libInit(config)
    ep.audDevManager().setNullDev()
    transport = pj.TransportConfig()
    transport.port = 0
    transport.boundAddress = transport.publicAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    account_config = pj.AccountConfig()
    account_config.idUri = "sip:appelant@127.0.0.1"
    media = account_config.mediaConfig.transportConfig
    media.boundAddress = media.publicAddress = "127.0.0.1"
    media.port, media.portRange = 0, 0
    account = pj.Account()
    account.create(account_config)
    emit("ready")

    call = Phone(account, args.wav, args.info_digits, args.refuse_refer)
    call.makeCall(args.uri, pj.CallOpParam(True))
    end = time.monotonic() + _LIMIT_S
    while not call.done and time.monotonic() < end:
        ep.libHandleEvents(20)
    if not call.done:
        call.hangup(pj.CallOpParam())
    call.player = None
    call = None
    account.shutdown()
    account = None
    gc.collect()
    ep.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
