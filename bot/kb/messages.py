"""The system messages the code speaks, by key; editors word them in ``messages.yml``.

The key list lives in code because code decides when each is said; the words live in the
knowledge base so that editors, not developers, own what callers hear.
"""

from __future__ import annotations

MESSAGE_KEYS: dict[str, str] = {
    "greeting": "accueil : dire que c'est l'assistant automatique de la Caf "
                "et inviter à poser la question",
    "anything_else": "après une réponse : proposer une autre question",
    "listening": "après un « oui » : inviter à poser la question",
    "greeting_reply": "réponse à « bonjour » en cours d'appel",
    "thanks": "réponse à « merci »",
    "clarify": "première incompréhension : demander de reformuler",
    "handoff": "transfert vers un conseiller à la demande de l'appelant",
    "handoff_misunderstood": "transfert après plusieurs incompréhensions",
    "advisor_offer": "proposition de parler à un conseiller (question sur le dossier personnel)",
    "nothing_to_repeat": "demande de répétition alors qu'aucune réponse n'a encore été donnée",
    "goodbye": "fin de l'appel",
    "error_apology": "excuse en cas de panne technique, avant le transfert",
    "no_input": "silence de l'appelant : relancer",
    "no_input_handoff": "deuxième silence : annoncer le transfert",
    "out_of_hours": "hors des horaires d'ouverture : donner les horaires, puis raccrocher",
    "saturation": "trop d'appels en cours : annoncer le transfert vers un conseiller",
    "transfer_failed": "échec du transfert : s'excuser et donner les horaires des conseillers",
    "dossier_personnel_route": "question sur son dossier, sans transfert configuré : dire comment "
                               "joindre le service de la Caf qui y a accès (choix 1, rappel)",
    "dossier_personnel_handoff": "question sur son dossier, transfert accepté : annoncer la mise "
                                 "en relation avec le service de la Caf",
}

OPTIONAL_MESSAGE_KEYS: dict[str, str] = {
    "satisfaction_question": "enquête de satisfaction avant l'au revoir (touches 1 à 5) ; "
                             "supprimer la ligne pour ne plus la poser",
}
"""Messages whose presence switches a feature on: absent or empty, the code says nothing."""
