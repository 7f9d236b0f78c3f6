"""Validate the whole knowledge base and say, in French, where and what to fix.

Every problem is collected (never stop at the first), each with its file and line, so an
editor fixes a batch of mistakes in one pass. A base with any error is never trained on
nor published: the running bot keeps the last good one.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import KbError
from bot.kb.messages import MESSAGE_KEYS, OPTIONAL_MESSAGE_KEYS
from bot.kb.model import Entry, KnowledgeBase, Motif, MotifKind
from bot.kb.triggers import TriggerRule, normalise, without_glue
from bot.kb.yaml_lines import LDict, Unreadable, line_of, load_yaml

MOTIFS_FILE = "motifs.yml"
MESSAGES_FILE = "messages.yml"
MIN_QUESTIONS = 8
SPOKEN_WORDS_PER_SECOND = 2.5  # calm telephone French, about 150 words a minute
MAX_ANSWER_SECONDS = 45
MAX_ANSWER_WORDS = int(MAX_ANSWER_SECONDS * SPOKEN_WORDS_PER_SECOND)
MAX_SMS_CHARS = 160
ID_PATTERN = re.compile(r"^[a-z0-9_]+$")
WRITTEN_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:fr|com|gouv|org|net|eu)\b", re.IGNORECASE)
ENTRY_FIELDS = ("id", "motif", "questions", "answer", "source", "reviewed", "sms", "declencheurs",
                "sauf")
TRIGGERS_FIELD = "declencheurs"
EXCEPTIONS_FIELD = "sauf"  # general-question phrases that keep the entry's triggers silent
MIN_TRIGGER_LETTERS = 4  # a shorter trigger ("rsa", "apl") would hand off ordinary questions
NEEDS_ANSWER = {MotifKind.FAQ, MotifKind.REORIENT}


@dataclass
class CheckResult:
    errors: list[KbError]
    kb: KnowledgeBase | None
    entries: int = 0
    motifs: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "motifs": dict(self.motifs),
            "errors": [e.as_dict() for e in self.errors],
        }


def check_kb(directory: Path, today: dt.date | None = None) -> CheckResult:
    """Load and validate every YAML file of ``directory``."""
    checker = _Checker(directory, today or dt.date.today())
    return checker.run()


class _Checker:
    def __init__(self, directory: Path, today: dt.date):
        self.directory = directory
        self.today = today
        self.errors: list[KbError] = []
        self.motifs: dict[str, Motif] = {}
        self.motif_lines: dict[str, int] = {}
        self.entries: list[Entry] = []
        self.entry_places: dict[str, tuple[str, int]] = {}
        # norm -> motif, entry, file, line
        self.questions: dict[str, tuple[str, str, str, int]] = {}
        self.messages: dict[str, str] = {}
        # norm -> trigger, entry, file, line
        self.triggers: dict[str, tuple[str, str, str, int]] = {}
        self.exceptions: dict[str, list[TriggerRule]] = {}  # entry -> its ``sauf:`` phrases

    def display(self, path: Path) -> str:
        return f"{self.directory.name}/{path.name}"

    def error(self, file: str, line: int, message: str) -> None:
        self.errors.append(KbError(file, line, message))

    def run(self) -> CheckResult:
        if not self.directory.is_dir():
            self.error(str(self.directory), 1, "dossier introuvable : indiquez le dossier de la "
                                               "base de connaissances (par défaut knowledge/).")
            return CheckResult(self.errors, None)
        motifs_ok = self.load_motifs(self.directory / MOTIFS_FILE)
        self.load_messages(self.directory / MESSAGES_FILE)
        theme_files = sorted(
            p for p in self.directory.iterdir()
            if p.suffix in (".yml", ".yaml") and p.name not in (MOTIFS_FILE, MESSAGES_FILE)
        )
        if not theme_files:
            self.error(self.display(self.directory / "*.yml"), 1,
                       "aucun fichier de fiches : ajoutez au moins un fichier <thème>.yml.")
        for path in theme_files:
            self.load_entries(path, motifs_ok)
        counts = {m: 0 for m in self.motifs}
        for entry in self.entries:
            if entry.motif in counts:
                counts[entry.motif] += 1
        # A motif left without entries is often the echo of an error above (a typo in a
        # motif, a file that does not parse): report it only once the theme files are clean.
        self.check_triggers_against_questions()
        theme_names = {self.display(p) for p in theme_files}
        if motifs_ok and not any(e.file in theme_names for e in self.errors):
            for motif_id, count in counts.items():
                if count == 0:
                    self.error(self.display(self.directory / MOTIFS_FILE),
                               self.motif_lines[motif_id],
                               f"aucune fiche pour le motif « {motif_id} » : ajoutez-en une "
                               "dans un fichier de thème, sinon le bot ne le reconnaîtra jamais.")
        self.errors.sort(key=lambda e: (e.file, e.line))
        kb = None
        if not self.errors:
            kb = KnowledgeBase(dict(self.motifs), tuple(self.entries), dict(self.messages))
        return CheckResult(self.errors, kb, len(self.entries), counts)

    # --- motifs.yml -----------------------------------------------------------------------
    def load_motifs(self, path: Path) -> bool:
        file = self.display(path)
        if not path.exists():
            self.error(file, 1, "fichier des motifs introuvable : il doit exister et lister "
                                "les motifs.")
            return False
        data, errors = load_yaml(path, file)
        self.errors += errors
        if data is None:
            return False
        items = data.get("motifs") if isinstance(data, dict) else None
        if not isinstance(items, list):
            self.error(file, line_of(data), "le fichier doit commencer par « motifs: » suivi "
                                            "de la liste.")
            return False
        kinds = ", ".join(k.value for k in MotifKind)
        ok = not errors
        for item in items:
            line = line_of(item)
            if not isinstance(item, dict):
                self.error(file, line, "chaque motif doit avoir id, kind et label.")
                ok = False
                continue
            motif_id, kind, label = item.get("id"), item.get("kind"), item.get("label")
            if not isinstance(motif_id, str) or not ID_PATTERN.match(motif_id):
                self.error(file, line, "id de motif manquant ou invalide "
                                       "(minuscules, chiffres, _).")
                ok = False
                continue
            if motif_id in self.motifs:
                self.error(file, line, f"le motif « {motif_id} » est déclaré deux fois "
                                       f"(déjà ligne {self.motif_lines[motif_id]}).")
                ok = False
                continue
            if not isinstance(kind, str) or kind not in {k.value for k in MotifKind}:
                self.error(file, line, f"kind « {kind} » invalide pour « {motif_id} » : "
                                       f"choisissez parmi {kinds}.")
                ok = False
                continue
            if not isinstance(label, str) or not label.strip():
                self.error(file, line, f"le motif « {motif_id} » n'a pas de label.")
            choix = item.get("choix")
            motif_id = str(motif_id)  # plain str: located strings must not leak out of checking
            self.motifs[motif_id] = Motif(motif_id, MotifKind(kind), str(label or ""),
                                          choix if isinstance(choix, int) else None)
            self.motif_lines[motif_id] = line
        return ok

    # --- messages.yml ---------------------------------------------------------------------
    def load_messages(self, path: Path) -> None:
        file = self.display(path)
        if not path.exists():
            self.error(file, 1, "fichier des messages introuvable : il contient l'accueil, "
                                "l'au revoir et les autres phrases du système.")
            return
        data, errors = load_yaml(path, file)
        self.errors += errors
        if data is None:
            return
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, LDict):
            self.error(file, line_of(data), "le fichier doit commencer par « messages: » suivi des "
                                            "messages, un par clé.")
            return
        for key, value in messages.items():
            line = messages.key_lines[key]
            known = {**MESSAGE_KEYS, **OPTIONAL_MESSAGE_KEYS}
            if key not in known:
                self.error(file, line, f"message inconnu « {key} »{_suggest(key, known)} ; "
                                       "le code ne le dirait jamais.")
                continue
            if key in OPTIONAL_MESSAGE_KEYS and (value is None or value == ""):
                continue  # left empty on purpose: the feature is off
            if not isinstance(value, str) or not value.strip():
                self.error(file, line, f"le message « {key} » est vide : écrivez la phrase à dire.")
                continue
            self.check_spoken_text(file, line, value, f"le message « {key} »")
            self.messages[str(key)] = " ".join(value.split())
        for key, purpose in MESSAGE_KEYS.items():
            if key not in messages:
                self.error(file, messages.line, f"il manque le message « {key} » ({purpose}).")

    # --- theme files --------------------------------------------------------------------------
    def load_entries(self, path: Path, motifs_ok: bool) -> None:
        file = self.display(path)
        data, errors = load_yaml(path, file)
        self.errors += errors
        if data is None:
            return
        items = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(items, list):
            self.error(file, line_of(data), "le fichier doit commencer par « entries: » suivi "
                                            "de la liste des fiches (voir knowledge/README.md).")
            return
        for item in items:
            if not isinstance(item, LDict):
                self.error(file, line_of(item), "chaque fiche commence par « - id: » et contient "
                                                "motif, questions, answer…")
                continue
            entry = self.check_entry(file, item, motifs_ok)
            if entry is not None:
                self.entries.append(entry)

    def check_entry(self, file: str, item: LDict, motifs_ok: bool) -> Entry | None:
        line = item.line
        for key in item:
            if key not in ENTRY_FIELDS:
                self.error(file, item.key_lines[key],
                           f"champ inconnu « {key} »{_suggest(key, ENTRY_FIELDS)} ; "
                           f"champs possibles : {', '.join(ENTRY_FIELDS)}.")
        valid = True
        entry_id = item.get("id")
        if not isinstance(entry_id, str) or not ID_PATTERN.match(entry_id):
            self.error(file, line, "champ « id » manquant ou invalide : un identifiant en "
                                   "minuscules, chiffres et _ "
                                   "(exemple : mdp_oublie_reinitialiser).")
            valid = False
            entry_id = f"?{file}:{line}"
        elif entry_id in self.entry_places:
            other_file, other_line = self.entry_places[entry_id]
            self.error(file, line, f"l'identifiant « {entry_id} » est déjà utilisé "
                                   f"({other_file}:{other_line}) : choisissez-en un autre.")
            valid = False
        else:
            self.entry_places[entry_id] = (file, line)

        motif_id = item.get("motif")
        motif = self.motifs.get(motif_id) if isinstance(motif_id, str) else None
        if motif_id is None:
            self.error(file, line, f"fiche « {entry_id} » : champ « motif » manquant.")
            valid = False
        elif motif is None and motifs_ok:
            self.error(file, item.key_lines["motif"],
                       f"motif inconnu « {motif_id} »{_suggest(str(motif_id), self.motifs)} : "
                       "utilisez un identifiant de motifs.yml.")
            valid = False

        questions = self.check_questions(file, item, entry_id, str(motif_id))
        triggers = self.check_triggers(file, item, entry_id, motif)
        exceptions = self.check_exceptions(file, item, entry_id, motif)
        answer = self.check_answer(file, item, entry_id, motif)
        source = self.check_source(file, item, entry_id, motif)
        reviewed = self.check_reviewed(file, item, entry_id, motif)
        sms = item.get("sms")
        if sms is not None:
            if not isinstance(sms, str) or not sms.strip():
                self.error(file, item.key_lines["sms"], "le champ « sms » est vide : retirez-le ou "
                                                        "écrivez le texte.")
            elif len(sms) > MAX_SMS_CHARS:
                self.error(file, item.key_lines["sms"],
                           f"SMS trop long : {len(sms)} caractères, {MAX_SMS_CHARS} au plus.")
        if not valid or questions is None or motif is None:
            return None
        return Entry(str(entry_id), motif.id, questions, answer, source, reviewed,
                     " ".join(sms.split()) if isinstance(sms, str) else None, file, line, triggers,
                     exceptions)

    def check_questions(self, file: str, item: LDict, entry_id: str,
                        motif_id: str) -> tuple[str, ...] | None:
        questions = item.get("questions")
        if questions is None:
            self.error(file, item.line, f"fiche « {entry_id} » : champ « questions » manquant "
                                        f"(au moins {MIN_QUESTIONS} façons de demander).")
            return None
        if not isinstance(questions, list):
            self.error(file, item.key_lines["questions"],
                       "« questions » doit être une liste "
                       "(une question par ligne, commençant par « - »).")
            return None
        kept: list[str] = []
        seen: dict[str, int] = {}
        for question in questions:
            qline = line_of(question, item.key_lines["questions"])
            if not isinstance(question, str) or not question.strip():
                self.error(file, qline, "question vide ou qui n'est pas du texte : "
                                        "mettez-la entre guillemets.")
                continue
            norm = normalise(question)  # two questions that sound the same compare equal
            if not norm:
                self.error(file, qline, "question sans mots : écrivez ce que dirait l'appelant.")
                continue
            if norm in seen:
                self.error(file, qline, "question en double dans la fiche "
                                        f"(déjà ligne {seen[norm]}) : "
                                        "formulez-la autrement ou supprimez-la.")
                continue
            seen[norm] = qline
            other = self.questions.get(norm)
            if other is not None:
                other_motif, other_entry, other_file, other_line = other
                if other_motif != motif_id:
                    self.error(file, qline, f"la question « {question.strip()} » est aussi "
                                            f"sous le motif « {other_motif} » "
                                            f"({other_file}:{other_line}) : une "
                                            "question ne peut appartenir qu'à un seul motif.")
                else:
                    self.error(file, qline, f"la question « {question.strip()} » est aussi "
                                            f"dans la fiche « {other_entry} » "
                                            f"({other_file}:{other_line}) : "
                                            "gardez-la dans une seule fiche.")
                continue
            self.questions[norm] = (motif_id, entry_id, file, qline)
            kept.append(" ".join(question.split()))
        if len(seen) < MIN_QUESTIONS:
            self.error(file, item.key_lines["questions"],
                       f"fiche « {entry_id} » : {len(seen)} question(s) différente(s), "
                       f"il en faut au moins {MIN_QUESTIONS}, "
                       "formulées comme les appelants les disent.")
        return tuple(kept)

    def check_triggers(self, file: str, item: LDict, entry_id: str,
                       motif: Motif | None) -> tuple[str, ...]:
        """``declencheurs:``: phrases that hand the caller over before the model is asked."""
        triggers = item.get(TRIGGERS_FIELD)
        if triggers is None:
            return ()
        key_line = item.key_lines[TRIGGERS_FIELD]
        if motif is not None and motif.kind is not MotifKind.HANDOFF:
            self.error(file, key_line, f"fiche « {entry_id} » : « {TRIGGERS_FIELD} » "
                                       "n'est possible que pour un motif de transfert "
                                       "(kind: handoff, comme conseiller ou urgence) ; "
                                       "retirez ce champ ou changez de motif.")
            return ()
        if not isinstance(triggers, list):
            self.error(file, key_line, f"« {TRIGGERS_FIELD} » doit être une liste "
                                       "(une expression par ligne, commençant par « - »).")
            return ()
        kept: list[str] = []
        for trigger in triggers:
            tline = line_of(trigger, key_line)
            if not isinstance(trigger, str) or not trigger.strip():
                self.error(file, tline, "déclencheur vide ou qui n'est pas du texte : "
                                        "mettez-le entre guillemets.")
                continue
            norm = normalise(trigger)
            if sum(c.isalpha() for c in norm) < MIN_TRIGGER_LETTERS:
                self.error(file, tline, f"déclencheur « {trigger.strip()} » trop court : au moins "
                                        f"{MIN_TRIGGER_LETTERS} lettres, sinon des questions "
                                        "ordinaires seraient transférées à un conseiller.")
                continue
            other = self.triggers.get(norm)
            if other is not None:
                _, other_entry, other_file, other_line = other
                self.error(file, tline, f"le déclencheur « {trigger.strip()} » est déjà "
                                        f"dans la fiche « {other_entry} » "
                                        f"({other_file}:{other_line}) : gardez-le "
                                        "une seule fois.")
                continue
            self.triggers[norm] = (trigger.strip(), entry_id, file, tline)
            kept.append(" ".join(trigger.split()))
        return tuple(kept)

    def check_exceptions(self, file: str, item: LDict, entry_id: str,
                         motif: Motif | None) -> tuple[str, ...]:
        """``sauf:``: turns of a general question ("c'est quoi", "à quel âge") that keep this
        entry's triggers silent, so "c'est quoi un indu" is answered, not transferred."""
        phrases = item.get(EXCEPTIONS_FIELD)
        if phrases is None:
            return ()
        key_line = item.key_lines[EXCEPTIONS_FIELD]
        if motif is not None and motif.kind is not MotifKind.HANDOFF:
            self.error(file, key_line,
                       f"fiche « {entry_id} » : « {EXCEPTIONS_FIELD} » n'est possible qu'avec des "
                       f"« {TRIGGERS_FIELD} », pour un motif de transfert ; retirez ce champ.")
            return ()
        if not isinstance(phrases, list):
            self.error(file, key_line, f"« {EXCEPTIONS_FIELD} » doit être une liste "
                                       "(une expression par ligne, commençant par « - »).")
            return ()
        kept: list[str] = []
        for phrase in phrases:
            pline = line_of(phrase, key_line)
            if not isinstance(phrase, str) or not normalise(phrase):
                self.error(file, pline, "exception vide ou qui n'est pas du texte : mettez-la "
                                        "entre guillemets.")
                continue
            if sum(c.isalpha() for c in normalise(phrase)) < MIN_TRIGGER_LETTERS:
                self.error(file, pline, f"exception « {phrase.strip()} » trop courte : au moins "
                                        f"{MIN_TRIGGER_LETTERS} lettres, sinon de vraies urgences "
                                        "ne seraient plus transférées tout de suite.")
                continue
            kept.append(" ".join(phrase.split()))
        self.exceptions[entry_id] = [TriggerRule.of(phrase) for phrase in kept]
        return tuple(kept)

    def check_triggers_against_questions(self) -> None:
        """A trigger found in a question of a motif that is not a hand-off would transfer
        callers who ask that question: the editor must narrow the trigger (or name the turn
        that makes it a general question under ``sauf:``)."""
        handoff = {m for m, motif in self.motifs.items() if motif.kind is MotifKind.HANDOFF}
        questions = [(norm, without_glue(norm), set(norm.split()),
                      set(without_glue(norm).split()), place)
                     for norm, place in self.questions.items() if place[0] not in handoff]
        for norm_trigger, (trigger, entry_id, file, line) in self.triggers.items():
            rule = TriggerRule.of(norm_trigger)
            exceptions = self.exceptions.get(entry_id, ())
            # A whole-word phrase can only be in a question holding each of its words: a set
            # test skips the regex for almost every pair (publishing waits on this check).
            words = set(norm_trigger.split())
            loose_words = set(without_glue(norm_trigger).split()) if rule.loose else None
            for norm_question, bare, question_words, bare_words, place in questions:
                if not words <= question_words and \
                        (loose_words is None or not loose_words <= bare_words):
                    continue
                motif_id, _entry, other_file, other_line = place
                if rule.found_in(norm_question, bare) and \
                        not any(e.found_in(norm_question, bare) for e in exceptions):
                    self.error(file, line,
                               f"le déclencheur « {trigger} » se trouve dans une question du "
                               f"motif « {motif_id} » ({other_file}:{other_line}) : cette "
                               "question serait transférée à un conseiller. Précisez le "
                               "déclencheur (plus de mots) ou reformulez la question.")
                    break

    def check_answer(self, file: str, item: LDict, entry_id: str,
                     motif: Motif | None) -> str | None:
        answer = item.get("answer")
        if motif is None:
            return None
        if motif.kind is MotifKind.DIALOGUE:
            if answer is not None:
                self.error(file, item.key_lines["answer"],
                           f"fiche « {entry_id} » : pas de « answer » pour un motif de "
                           "conversation ; la phrase du bot se règle dans messages.yml.")
            return None
        if answer is None:
            if motif.kind in NEEDS_ANSWER:
                self.error(file, item.line, f"fiche « {entry_id} » : champ « answer » manquant "
                                            "(la réponse que le bot dira).")
            return None
        line = item.key_lines["answer"]
        if not isinstance(answer, str) or not answer.strip():
            self.error(file, line, f"fiche « {entry_id} » : la réponse est vide.")
            return None
        self.check_spoken_text(file, line, answer, "la réponse")
        return " ".join(answer.split())

    def check_spoken_text(self, file: str, line: int, text: str, what: str) -> None:
        words = len(text.split())
        if words > MAX_ANSWER_WORDS:
            seconds = round(words / SPOKEN_WORDS_PER_SECOND)
            self.error(file, line, f"{what} dure environ {seconds} secondes à l'oral "
                                   f"({words} mots) ; "
                                   f"{MAX_ANSWER_SECONDS} secondes au plus "
                                   f"({MAX_ANSWER_WORDS} mots). "
                                   "Raccourcissez le texte ou découpez-le en deux fiches.")
        found = WRITTEN_URL.search(text)
        if found:
            self.error(file, line, f"{what} contient une adresse écrite « {found.group(0)} » : "
                                   "écrivez-la comme on la dit (« caf point fr »), "
                                   "le bot la lira à voix haute.")

    def check_source(self, file: str, item: LDict, entry_id: str,
                     motif: Motif | None) -> str | None:
        source = item.get("source")
        if source is None:
            if motif is not None and motif.kind in NEEDS_ANSWER:
                self.error(file, item.line, f"fiche « {entry_id} » : champ « source » manquant "
                                            "(l'adresse de la page caf.fr ou service-public.fr "
                                            "d'où vient la réponse).")
            return None
        if not isinstance(source, str) or not re.match(r"^https?://\S+$", source.strip()):
            self.error(file, item.key_lines["source"],
                       "« source » doit être une adresse web complète commençant par https://.")
            return None
        return source.strip()

    def check_reviewed(self, file: str, item: LDict, entry_id: str,
                       motif: Motif | None) -> str | None:
        reviewed = item.get("reviewed")
        if reviewed is None:
            if motif is not None and motif.kind in NEEDS_ANSWER:
                self.error(file, item.line, f"fiche « {entry_id} » : champ « reviewed » "
                                            "manquant (date de dernière relecture, "
                                            "au format 2026-11-23).")
            return None
        line = item.key_lines["reviewed"]
        if isinstance(reviewed, Unreadable):
            return None  # an impossible date, reported by the loader at this line
        if isinstance(reviewed, dt.datetime):
            reviewed = reviewed.date()
        if isinstance(reviewed, str):
            try:
                reviewed = dt.date.fromisoformat(reviewed.strip())
            except ValueError:
                reviewed = None
        if not isinstance(reviewed, dt.date):
            self.error(file, line, "« reviewed » doit être une date au format AAAA-MM-JJ "
                                   "(exemple : 2026-11-23).")
            return None
        if reviewed > self.today:
            self.error(file, line, f"date de relecture {reviewed.isoformat()} dans le futur : "
                                   "indiquez la date où la réponse a été relue.")
        return reviewed.isoformat()


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (vouliez-vous dire « {close[0]} » ?)" if close else ""
