"""Editors' pages over HTTP: search, check with errors beside their fields, hear, publish
(YAML kept, live base swapped, history recorded), history with differences, restore, and
the phrasings the bot did not understand.

Each test has its own copy of knowledge/ and of a published state directory (editor_kb.py).
"""

from __future__ import annotations

import difflib
import html
import io
import re
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from editor_kb import (
    ENTRY,
    ENTRY_FILE,
    TOO_LONG_ANSWER,
    clone,
    field_block,
    form_fields,
    publish_copy,
)

from bot.kb.store import KbStore
from bot.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def published_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("editor-template")
    publish_copy(root)
    return root


@pytest.fixture
def console_settings(published_template: Path, tmp_path: Path):
    """Overrides conftest's: the console edits a private copy of the knowledge base."""
    return clone(published_template, tmp_path / "copy")


@pytest.fixture
def editor(console_app, make_user, login):
    login(console_app, "edith", make_user("edith", "editeur"))
    return console_app


def live_answer(settings, entry_id: str = ENTRY) -> str:
    return KbStore(settings.paths.state_dir).current().kb.entry(entry_id).answer


def post_form(client, fields: dict[str, str], action: str, comment: str = ""):
    data = dict(fields, action=action, commentaire=comment)
    return client.post(f"/editeur/fiches/{ENTRY}", data=data, follow_redirects=False)


# --- access ----------------------------------------------------------------------------------
def test_editor_pages_need_the_editeur_role(console_app, make_user, login):
    assert console_app.get("/editeur", follow_redirects=False).headers["location"] \
        .startswith("/login")
    login(console_app, "sam", make_user("sam", "superviseur"))
    for path in ("/editeur", f"/editeur/fiches/{ENTRY}", "/editeur/incomprises",
                 "/editeur/publications", f"/editeur/fiches/{ENTRY}/historique"):
        page = console_app.get(path)
        assert page.status_code == 403, path
        assert "Votre rôle ne donne pas accès à cette page." in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', console_app.get("/").text).group(1)
    refused = console_app.post(f"/editeur/fiches/{ENTRY}", data={
        "csrf_token": token, "action": "publier", "answer": "Piraté.", "commentaire": "x"})
    assert refused.status_code == 403


# --- browse ----------------------------------------------------------------------------------
def test_entries_are_searched_by_words_and_by_motif(editor):
    everything = editor.get("/editeur").text
    assert f'href="/editeur/fiches/{ENTRY}"' in everything
    by_words = editor.get("/editeur", params={"q": "MOT DE PASSE oublie"}).text
    assert f'href="/editeur/fiches/{ENTRY}"' in by_words
    assert 'href="/editeur/fiches/conversation_salutation"' not in by_words
    by_motif = editor.get("/editeur", params={"motif": "salutation"}).text
    assert 'href="/editeur/fiches/conversation_salutation"' in by_motif
    assert f'href="/editeur/fiches/{ENTRY}"' not in by_motif
    assert editor.get("/editeur/fiches/pas_une_fiche").status_code == 404


# --- check -----------------------------------------------------------------------------------
def test_check_puts_each_french_error_beside_its_field_and_writes_nothing(editor,
                                                                          console_settings):
    yaml_file = console_settings.paths.knowledge_dir / ENTRY_FILE
    before = yaml_file.read_text(encoding="utf-8")
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields.update(answer=TOO_LONG_ANSWER, reviewed="23/11/2026", source="caf.fr",
                  questions="\n".join(fields["questions"].splitlines()[:3]))
    page = post_form(editor, fields, "verifier")
    assert page.status_code == 422
    answer = field_block(page.text, "answer")
    assert "la réponse dure environ" in answer and "45 secondes au plus" in answer
    assert "« reviewed » doit être une date au format AAAA-MM-JJ" in field_block(page.text,
                                                                                  "reviewed")
    assert "« source » doit être une adresse web complète" in field_block(page.text, "source")
    assert "3 question(s) différente(s), il en faut au moins 8" in field_block(page.text,
                                                                              "questions")
    assert "la réponse dure" not in field_block(page.text, "questions")
    assert 'aria-invalid="true"' in answer
    assert yaml_file.read_text(encoding="utf-8") == before
    assert "Si le code n'arrive pas" in live_answer(console_settings)


def test_a_question_of_another_motif_is_reported_on_the_questions(editor):
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields["questions"] += "\nbonjour bonjour madame"  # a question of conversation_salutation
    page = post_form(editor, fields, "verifier")
    assert page.status_code == 422
    assert "la question « bonjour bonjour madame » est aussi sous le motif" in \
        field_block(page.text, "questions")


def test_a_valid_edit_checks_clean(editor):
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields["answer"] += "\nVérifiez aussi vos courriers indésirables."
    page = post_form(editor, fields, "verifier")
    assert page.status_code == 200
    assert "Aucune erreur : la fiche peut être publiée." in page.text


# --- hear ------------------------------------------------------------------------------------
def wav_of(client, page: str) -> wave.Wave_read:
    src = re.search(r'<audio [^>]*src="(/editeur/audio/[0-9a-f]{64}\.wav)"', page)
    assert src, "no <audio> player in the page"
    audio = client.get(src.group(1))
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.headers["content-disposition"] == "inline"
    return wave.open(io.BytesIO(audio.content))


def test_the_answer_plays_in_the_page_as_the_line_plays_it(editor, console_settings):
    from bot.audio import LINE_RATE
    from tts.speaker import Speaker

    page = editor.get(f"/editeur/fiches/{ENTRY}").text
    published = wav_of(editor, page)
    cached = Speaker.load(console_settings).cached(live_answer(console_settings))
    assert published.getframerate() == LINE_RATE
    assert published.readframes(published.getnframes()) == cached.pcm

    fields = form_fields(page)
    fields["answer"] += "\nUne phrase de plus, pour entendre la différence."
    heard = post_form(editor, fields, "ecouter")
    assert "telle que l'appelant l'entendra (non publiée)" in heard.text
    edited = wav_of(editor, heard.text)
    assert edited.getnframes() > published.getnframes()


# --- publish ---------------------------------------------------------------------------------
def test_publish_rewrites_only_the_answer_and_goes_live(editor, console_settings):
    yaml_file = console_settings.paths.knowledge_dir / ENTRY_FILE
    before = yaml_file.read_text(encoding="utf-8")
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields["answer"] = fields["answer"].replace("en quelques minutes", "en deux minutes")
    done = post_form(editor, fields, "publier", "délai plus précis")
    assert done.status_code == 303
    after = yaml_file.read_text(encoding="utf-8")
    changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                     lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == [
        "-      Vous pouvez choisir un nouveau mot de passe vous-même, en quelques minutes.",
        "+      Vous pouvez choisir un nouveau mot de passe vous-même, en deux minutes.",
    ]
    assert "vous-même, en deux minutes. Allez sur caf point fr" in live_answer(console_settings)
    confirmation = editor.get(done.headers["location"]).text
    assert "la nouvelle version est en ligne" in confirmation
    publications = editor.get("/editeur/publications").text
    assert "edith" in publications and "délai plus précis" in publications
    assert editor.app.state.audit.entries(user="edith", action="publication_fiche")
    repository = (PROJECT_ROOT / "knowledge" / ENTRY_FILE).read_text(encoding="utf-8")
    assert "en deux minutes" not in repository


def test_publish_with_an_error_writes_and_publishes_nothing(editor, console_settings):
    yaml_file = console_settings.paths.knowledge_dir / ENTRY_FILE
    before = yaml_file.read_text(encoding="utf-8")
    live_before = KbStore(console_settings.paths.state_dir).current().content_fingerprint
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields["answer"] = TOO_LONG_ANSWER
    page = post_form(editor, fields, "publier", "trop long")
    assert page.status_code == 422
    assert "la réponse dure environ" in field_block(page.text, "answer")
    assert yaml_file.read_text(encoding="utf-8") == before
    assert KbStore(console_settings.paths.state_dir).current().content_fingerprint == live_before


def test_publish_needs_a_comment(editor, console_settings):
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields["answer"] += "\nAutre phrase."
    page = post_form(editor, fields, "publier", "   ")
    assert page.status_code == 409
    assert "Écrivez un commentaire" in field_block(page.text, "commentaire")
    assert "Autre phrase." not in live_answer(console_settings)


def test_an_entry_changed_since_the_form_was_opened_is_not_overwritten(editor,
                                                                       console_settings):
    stale = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    first = dict(stale, answer=stale["answer"] + "\nPremière modification.")
    assert post_form(editor, first, "publier", "première").status_code == 303
    second = dict(stale, answer=stale["answer"] + "\nSeconde modification.")
    page = post_form(editor, second, "publier", "seconde")
    assert page.status_code == 409
    assert "a été modifiée depuis que vous l'avez ouverte" in html.unescape(page.text)
    assert "Première modification." in live_answer(console_settings)


# --- history and restore ---------------------------------------------------------------------
def test_history_shows_differences_and_restore_publishes_the_old_version(editor,
                                                                          console_settings):
    yaml_file = console_settings.paths.knowledge_dir / ENTRY_FILE
    original = yaml_file.read_text(encoding="utf-8")
    original_answer = live_answer(console_settings)
    fields = form_fields(editor.get(f"/editeur/fiches/{ENTRY}").text)
    fields["answer"] = fields["answer"].replace("en quelques minutes", "très vite")
    assert post_form(editor, fields, "publier", "plus court").status_code == 303

    history = editor.get(f"/editeur/fiches/{ENTRY}/historique").text
    assert "plus court" in history and "edith" in history
    removed = re.findall(r"<del [^>]*>(.*?)</del>", history, re.S)
    added = re.findall(r"<ins [^>]*>(.*?)</ins>", history, re.S)
    assert any("en quelques minutes" in d for d in removed)
    assert any("très vite" in a for a in added)

    baseline = re.search(r'name="publication" value="(\d+)"', history).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', history).group(1)
    restored = editor.post(f"/editeur/fiches/{ENTRY}/restaurer", follow_redirects=False,
                           data={"csrf_token": token, "publication": baseline,
                                 "commentaire": "retour au texte relu"})
    assert restored.status_code == 303
    assert live_answer(console_settings) == original_answer
    assert yaml_file.read_text(encoding="utf-8") == original
    assert "retour au texte relu" in editor.get("/editeur/publications").text
    assert editor.app.state.audit.entries(user="edith", action="restauration_fiche")


# --- not understood --------------------------------------------------------------------------
def record_call(ledger, call_id: str, minutes_ago: int, transcript: str) -> None:
    from ledger.records import Interaction, Outcome

    ended = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    stored = ledger.record_interaction(Interaction(
        call_id=call_id, caller_number="+33612345678", started_at=ended - timedelta(minutes=2),
        ended_at=ended, motif="conseiller", message_ms=0, listened_ms=0, handoff=True,
        outcome=Outcome.HANDOFF, transcript=transcript))
    assert stored.value == "stored"


def test_misunderstood_phrasings_are_grouped_and_can_be_added_to_an_entry(
        editor, console_settings, console_ledger):
    messages = KbStore(console_settings.paths.state_dir).current().kb.messages
    clarify, gave_up = messages["clarify"], messages["handoff_misunderstood"]
    record_call(console_ledger, "c1", 30, f"Appelant : la prime de noël elle tombe quand\n"
                                          f"Bot : {clarify}\nAppelant : la prime de noel\n"
                                          f"Bot : {gave_up}")
    record_call(console_ledger, "c2", 20, f"Appelant : c'est pour la prime de Noël\n"
                                          f"Bot : {clarify}\nAppelant : j'ai oublié mon mot "
                                          "de passe\nBot : Vous pouvez choisir…")
    record_call(console_ledger, "c3", 10, f"Appelant : zkrv qxwj blorf\nBot : {clarify}")

    page = editor.get("/editeur/incomprises").text
    groups = re.findall(r'<h3 id="g\d+">(.*?)</h3>', page)
    assert len(groups) == 2
    assert "3 fois, 2 appel(s)" in groups[0]
    assert "zkrv qxwj blorf" in groups[1]
    assert "la prime de noël elle tombe quand" in page
    assert "j&#39;ai oublié mon mot de passe" not in page  # that one was understood
    read = editor.app.state.audit.entries(user="edith", action="lecture_transcriptions")
    assert read and "3 transcription(s)" in read[-1].object

    opened = editor.get("/editeur/ajouter", params={"fiche": ENTRY,
                                                    "formulation": "la prime de noel"})
    assert "la prime de noel" in form_fields(opened.text)["questions"].splitlines()
    assert "est ajoutée aux questions" in opened.text
