"""Call recordings played in the page (role ``superviseur``): streamed, never offered for download.

``GET /recordings/{call_id}`` answers the decrypted WAV with ``Content-Disposition: inline``,
``Cache-Control: no-store`` and byte ranges, so the page's ``<audio>`` can seek; the page
itself (``/enregistrements/{call_id}``) shows the player with ``controlsList="nodownload"``
and no link to the file. Each request that sends audio is one access-log entry with the
bytes it sent: a play is its first request (``bytes=0-``), a seek adds one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from console.audit_log import record
from console.auth import require_role
from console.ranges import Unsatisfiable, parse_range
from console.render import render
from console.roles import SUPERVISEUR
from ledger.recordings import RecordingVault

router = APIRouter()

AUDIO_TYPE = "audio/wav"
PLAY_ACTION = "ecoute_enregistrement"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SUPERVISOR = Depends(require_role(SUPERVISEUR))


def vault(request: Request) -> RecordingVault:
    settings = request.app.state.settings
    return RecordingVault.for_ledger(request.app.state.ledger, settings.paths.state_dir)


@router.get("/recordings/{call_id:path}")
async def recording_audio(request: Request, call_id: str,
                          user=SUPERVISOR,
                          range_header: Annotated[str | None, Header(alias="Range")] = None
                          ) -> Response:
    wav = await run_in_threadpool(vault(request).open_wav, call_id)
    if wav is None:
        record(request, user, PLAY_ACTION, f"appel {call_id}", outcome="introuvable")
        return Response("Aucun enregistrement pour cet appel (jamais enregistré, ou supprimé "
                        "après deux mois).", status_code=404, headers=NO_STORE,
                        media_type="text/plain; charset=utf-8")
    size = len(wav)
    headers = {**NO_STORE, "Accept-Ranges": "bytes", "Content-Disposition": "inline",
               "X-Content-Type-Options": "nosniff"}
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        record(request, user, PLAY_ACTION, f"appel {call_id} (plage {range_header})",
               outcome="plage_invalide")
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        record(request, user, PLAY_ACTION, f"appel {call_id} (octets 0-{size - 1}/{size})")
        return Response(wav, media_type=AUDIO_TYPE, headers=headers)
    record(request, user, PLAY_ACTION,
           f"appel {call_id} (octets {wanted.start}-{wanted.end}/{size})")
    return Response(wav[wanted.start:wanted.end + 1], status_code=206, media_type=AUDIO_TYPE,
                    headers={**headers, "Content-Range": wanted.content_range(size)})


@router.get("/enregistrements/{call_id:path}")
async def player_page(request: Request, call_id: str,
                      user=SUPERVISOR) -> Response:
    found = await run_in_threadpool(vault(request).find, call_id)
    return render(request, "recordings/player.html", call_id=call_id,
                  found=found is not None)
