"""The console's roles, named as the issue and the CLI spell them."""

from __future__ import annotations

EDITEUR = "editeur"
SUPERVISEUR = "superviseur"
FACTURATION = "facturation"
AUDITEUR = "auditeur"
ADMIN = "admin"

ROLES = (EDITEUR, SUPERVISEUR, FACTURATION, AUDITEUR, ADMIN)

LABELS = {
    EDITEUR: "Éditeur (base de connaissances)",
    SUPERVISEUR: "Superviseur (supervision, tableaux de bord, transcriptions, enregistrements)",
    FACTURATION: "Facturation (SC3.2 et commandes)",
    AUDITEUR: "Auditeur (journal des accès, lecture seule)",
    ADMIN: "Administrateur (utilisateurs)",
}
