"""Editors' pages (role ``editeur``): the knowledge base in a browser.

- ``/editeur``: entries, searched by motif and words (questions, answer, id);
- ``/editeur/fiches/{id}``: the form (questions one per line, answer, source, reviewed date);
  « Vérifier » runs ``kb check``'s validator on a copy with the edit and puts each French
  error beside its field, « Écouter » plays the answer as the line would (cached audio, or
  synthesised with the configured voice), « Publier » checks, writes the YAML (comments and
  layout kept) and puts the base live: the running bot reads it at its next turn;
- ``/editeur/fiches/{id}/historique``: the entry's published versions with their
  differences, each restorable (check and publish again, with a comment);
- ``/editeur/publications``: who published what, when, why;
- ``/editeur/incomprises``: caller phrasings the bot did not understand, grouped by
  similarity, each addable to an entry's questions (a logged read of transcripts).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from bot.errors import VoicebotError
from bot.kb.check import MAX_ANSWER_SECONDS, MAX_ANSWER_WORDS, MIN_QUESTIONS
from bot.kb.store import KbStore
from console.audit_log import record
from console.auth import require_role
from console.editor.entries import EntryDoc, EntryFields, KnowledgeFiles
from console.editor.history import PublishHistory
from console.editor.misunderstood import (
    KINDS,
    group_phrasings,
    normalise,
    read_misunderstood,
    wordings_of,
)
from console.editor.publishing import KbPublisher, PublishOutcome, entry_version
from console.editor.speech import AnswerAudio
from console.editor.validation import EditCheck, EntryNotFoundError
from console.render import NavItem, render
from console.roles import EDITEUR
from console.users import User

router = APIRouter()
NAV = [NavItem("Base de connaissances", "/editeur", (EDITEUR,))]
Editor = Annotated[User, Depends(require_role(EDITEUR))]
MISUNDERSTOOD_DAYS = 30
"""Default period of the « questions non comprises » page, ending today."""
PUBLICATIONS_SHOWN = 200


@dataclass
class _Tools:
    publisher: KbPublisher
    audio: AnswerAudio
    store: KbStore

    @property
    def files(self) -> KnowledgeFiles:
        return self.publisher.files

    @property
    def history(self) -> PublishHistory:
        return self.publisher.history


_tools_lock = threading.Lock()


def _tools(request: Request) -> _Tools:
    """One publisher (its lock), one voice and one view of the live base per app."""
    state = request.app.state
    with _tools_lock:
        if getattr(state, "editor_tools", None) is None:
            settings = state.settings
            state.editor_tools = _Tools(KbPublisher(settings), AnswerAudio(settings),
                                        KbStore(settings.paths.state_dir))
        return state.editor_tools


# --- list and search -----------------------------------------------------------------------
@router.get("/editeur")
def entries_page(request: Request, user: Editor, q: str = "", motif: str = "") -> Response:
    tools = _tools(request)
    entries = tools.files.entries()
    labels = tools.files.motif_labels()
    words = normalise(q).split()
    shown = [e for e in entries
             if (not motif or e.motif == motif) and all(w in _haystack(e) for w in words)]
    motifs = sorted({e.motif for e in entries}, key=lambda m: labels.get(m, m).lower())
    return render(request, "editor/entries.html", title="Base de connaissances",
                  entries=shown, total=len(entries), labels=labels, motifs=motifs, q=q,
                  motif=motif, live=_live_version(tools))


def _haystack(entry: EntryDoc) -> str:
    return normalise(" ".join((entry.id, entry.motif, entry.fields.answer,
                               *entry.fields.questions)))


def _live_version(tools: _Tools) -> str | None:
    try:
        snapshot = tools.store.current()
    except VoicebotError:
        return None
    return f"{snapshot.content_fingerprint}, publiée le {_paris(snapshot.published_at)}"


# --- one entry -----------------------------------------------------------------------------
@router.get("/editeur/fiches/{entry_id}")
def entry_page(request: Request, entry_id: str, user: Editor, ajouter: str = "",
               publie: int = 0) -> Response:
    tools = _tools(request)
    entry = _entry_or_404(tools, entry_id)
    fields = entry.fields
    notice = ""
    if ajouter.strip():
        fields = fields.with_question(ajouter)
        notice = (f"La formulation « {' '.join(ajouter.split())} » est ajoutée aux questions "
                  "ci-dessous. Vérifiez, puis publiez avec un commentaire.")
    published = tools.history.publication(publie) if publie else None
    return _entry_form(request, tools, entry, fields, notice=notice, published=published)


@router.post("/editeur/fiches/{entry_id}")
def entry_submit(request: Request, entry_id: str, user: Editor,
                 questions: Annotated[str, Form()] = "", answer: Annotated[str, Form()] = "",
                 source: Annotated[str, Form()] = "", reviewed: Annotated[str, Form()] = "",
                 commentaire: Annotated[str, Form()] = "", version: Annotated[str, Form()] = "",
                 action: Annotated[str, Form()] = "verifier") -> Response:
    tools = _tools(request)
    entry = _entry_or_404(tools, entry_id)
    fields = EntryFields.from_form(questions, answer, source, reviewed)
    if action == "ecouter":
        key, audio_error = None, ""
        try:
            key = tools.audio.prepare(fields.spoken_answer) if fields.spoken_answer else None
        except VoicebotError as exc:  # no voice configured or it failed: say why
            audio_error = str(exc)
        return _entry_form(request, tools, entry, fields, comment=commentaire, version=version,
                           audio_key=key, heard=True, audio_error=audio_error)
    if action == "publier":
        return _publish(request, tools, user, entry, fields, commentaire, version)
    checked = tools.publisher.check(entry_id, fields)
    return _entry_form(request, tools, entry, fields, checked=checked, comment=commentaire,
                       version=version, status_code=200 if checked.ok else 422)


def _publish(request: Request, tools: _Tools, user: User, entry: EntryDoc, fields: EntryFields,
             comment: str, version: str, action: str = "publication_fiche") -> Response:
    try:
        outcome = tools.publisher.publish_entry(entry.id, fields, user.name, comment,
                                                version or None)
    except EntryNotFoundError as exc:
        return render(request, "core/error.html", status_code=404, title="Fiche introuvable",
                      message=str(exc), detail="")
    except VoicebotError as exc:
        record(request, user, action, f"fiche {entry.id}", "refuse")
        return _entry_form(request, tools, entry, fields, comment=comment, version=version,
                           comment_error=str(exc), status_code=409)
    if not isinstance(outcome, PublishOutcome):
        record(request, user, action, f"fiche {entry.id} : {len(outcome.errors)} erreur(s)",
               "refuse")
        return _entry_form(request, tools, entry, fields, checked=outcome, comment=comment,
                           version=version, status_code=422)
    number = outcome.publication.number
    record(request, user, action, f"fiche {entry.id} (publication n° {number})")
    return RedirectResponse(f"/editeur/fiches/{quote(entry.id)}?publie={number}",
                            status_code=303)


def _entry_form(request: Request, tools: _Tools, entry: EntryDoc, fields: EntryFields, *,
                checked: EditCheck | None = None, comment: str = "", version: str = "",
                audio_key: str | None = None, heard: bool = False, notice: str = "",
                comment_error: str = "", published=None, audio_error: str = "",
                status_code: int = 200) -> Response:
    if audio_key is None and not heard and fields.spoken_answer:
        try:
            if tools.audio.is_cached(fields.spoken_answer):
                audio_key = tools.audio.key(fields.spoken_answer)
        except VoicebotError as exc:
            audio_error = str(exc)
    words = len(fields.spoken_answer.split())
    return render(
        request, "editor/entry.html", status_code=status_code, title=f"Fiche {entry.id}",
        entry=entry, fields=fields, checked=checked, comment=comment,
        version=version or entry_version(entry), audio_key=audio_key, heard=heard,
        notice=notice, comment_error=comment_error, published=published,
        audio_error=audio_error,
        label=tools.files.motif_labels().get(entry.motif, entry.motif), words=words,
        seconds=round(words / (MAX_ANSWER_WORDS / MAX_ANSWER_SECONDS)),
        max_seconds=MAX_ANSWER_SECONDS, min_questions=MIN_QUESTIONS,
        questions_rows=min(max(len(fields.questions) + 2, 8), 30))


@router.get("/editeur/audio/{key}.wav")
def answer_audio(request: Request, key: str, user: Editor) -> Response:
    wav = _tools(request).audio.wav(key)
    if wav is None:
        return Response(status_code=404)
    return Response(wav, media_type="audio/wav",
                    headers={"Content-Disposition": "inline", "Cache-Control": "private"})


# --- history -------------------------------------------------------------------------------
@router.get("/editeur/fiches/{entry_id}/historique")
def entry_history(request: Request, entry_id: str, user: Editor) -> Response:
    tools = _tools(request)
    versions = tools.history.entry_versions(entry_id)
    current = tools.files.entry(entry_id)
    if current is None and not versions:
        raise HTTPException(status_code=404, detail=str(EntryNotFoundError(entry_id)))
    return render(request, "editor/history.html", title=f"Historique de {entry_id}",
                  entry_id=entry_id, current=current, versions=versions, paris=_paris)


@router.post("/editeur/fiches/{entry_id}/restaurer")
def entry_restore(request: Request, entry_id: str, user: Editor,
                  publication: Annotated[int, Form()],
                  commentaire: Annotated[str, Form()] = "") -> Response:
    tools = _tools(request)
    entry = _entry_or_404(tools, entry_id)
    old = tools.history.entry_at(publication, entry_id)
    if old is None:
        return render(request, "core/error.html", status_code=404, title="Version introuvable",
                      message=f"La publication n° {publication} ne contient pas la fiche "
                              f"« {entry_id} ».", detail="")
    comment = commentaire.strip() or \
        f"restauration de la version de la publication n° {publication}"
    return _publish(request, tools, user, entry, old.fields, comment, "",
                    action="restauration_fiche")


@router.get("/editeur/publications")
def publications_page(request: Request, user: Editor) -> Response:
    publications = _tools(request).history.publications()[::-1][:PUBLICATIONS_SHOWN]
    return render(request, "editor/publications.html", title="Publications",
                  publications=publications, paris=_paris)


# --- not understood ------------------------------------------------------------------------
@router.get("/editeur/incomprises")
def misunderstood_page(request: Request, user: Editor, du: str = "", au: str = "") -> Response:
    tools = _tools(request)
    ledger = request.app.state.ledger
    today = datetime.now(ledger.calendar.tz).date()
    try:
        first = date.fromisoformat(du) if du else today - timedelta(days=MISUNDERSTOOD_DAYS - 1)
        last = date.fromisoformat(au) if au else today
    except ValueError:
        return render(request, "core/error.html", status_code=400, title="Dates invalides",
                      message="Les dates s'écrivent AAAA-MM-JJ (exemple : 2026-11-23).",
                      detail="")
    if first > last:
        first, last = last, first
    try:
        scan = read_misunderstood(ledger, first, last, _wordings(tools), user.name)
    except VoicebotError as exc:
        record(request, user, "lecture_transcriptions",
               f"questions non comprises du {first} au {last}", "erreur")
        return render(request, "core/error.html", status_code=503, title="Registre injoignable",
                      message=str(exc), detail="")
    record(request, user, "lecture_transcriptions",
           f"questions non comprises du {first} au {last} : {scan.transcripts} transcription(s) "
           f"lue(s), {len(scan.phrasings)} formulation(s)")
    entries = tools.files.entries()
    groups = group_phrasings(scan.phrasings, {e.id: list(e.fields.questions) for e in entries
                                              if e.fields.questions})
    return render(request, "editor/misunderstood.html", title="Questions non comprises",
                  groups=groups, scan=scan, first=first, last=last, entries=entries,
                  labels=tools.files.motif_labels(), kinds=KINDS)


@router.get("/editeur/ajouter")
def add_phrasing(request: Request, user: Editor, fiche: str = "",
                 formulation: str = "") -> Response:
    """From the « non comprises » page: open the entry with the phrasing added."""
    return RedirectResponse(f"/editeur/fiches/{quote(fiche)}?ajouter={quote(formulation)}",
                            status_code=303)


def _wordings(tools: _Tools) -> dict[str, str]:
    """Every wording of « rephrase » and of the hand-off after misunderstandings the line
    may have said: the live base's, and each published messages.yml."""
    import yaml

    wordings: dict[str, str] = {}
    try:
        wordings.update(wordings_of(tools.store.current().kb.messages))
    except VoicebotError:
        pass
    texts = []
    messages_file = tools.files.directory / "messages.yml"
    if messages_file.exists():
        texts.append(messages_file.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for publication in tools.history.publications():
        digest = publication.files.get("messages.yml")
        if digest and digest not in seen:
            seen.add(digest)
            texts.append((tools.history.blobs / digest).read_text(encoding="utf-8"))
    for text in texts:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        messages = data.get("messages") if isinstance(data, dict) else None
        if isinstance(messages, dict):
            wordings.update(wordings_of({k: str(v) for k, v in messages.items() if v}))
    return wordings


# --- helpers -------------------------------------------------------------------------------
def _entry_or_404(tools: _Tools, entry_id: str) -> EntryDoc:
    entry = tools.files.entry(entry_id)
    if entry is None:
        raise HTTPException(status_code=404, detail=str(EntryNotFoundError(entry_id)))
    return entry


def _paris(iso: str) -> str:
    from console.audit_chain import PARIS

    return datetime.fromisoformat(iso).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M:%S")
