"""Password rule (CNIL deliberation 2022-100) and argon2id hashing.

The deliberation's recommendation for password-only authentication asks for about 80 bits of
entropy and gives three ways to get there; any one of them is accepted here:

1. at least 12 characters mixing upper case, lower case, digits and special characters;
2. at least 14 characters mixing upper case, lower case and digits (no special character);
3. a passphrase of at least 7 words (words of 3 letters or more, separated by spaces or
   dashes).

A password that contains the user's name, or that is only one character repeated, is refused
whatever its length. Hashes are argon2id (argon2-cffi's RFC 9106 low-memory profile: 3 passes,
64 MiB, 4 lanes), salted per user; a hash made with older parameters is re-made at the next
successful login.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.errors import VoicebotError

MIN_MIXED = 12
MIN_NO_SPECIAL = 14
MIN_PASSPHRASE_WORDS = 7
MAX_LENGTH = 256
"""Longer input is refused before hashing (a megabyte password would cost the server)."""

RULE = (
    "au moins 12 caractères mêlant majuscules, minuscules, chiffres et caractères spéciaux ; "
    "ou au moins 14 caractères mêlant majuscules, minuscules et chiffres ; "
    "ou une phrase de passe d'au moins 7 mots"
)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("mot de passe factice pour égaliser les temps de réponse")


class WeakPasswordError(VoicebotError):
    """The password does not follow the CNIL rule; the message says what is missing."""


def password_problem(password: str, user_name: str = "") -> str | None:
    """Why the password is refused, in French, or None when it is acceptable."""
    if len(password) > MAX_LENGTH:
        return f"Mot de passe trop long (au plus {MAX_LENGTH} caractères)."
    if len(set(password)) <= 2:
        return "Mot de passe refusé : un ou deux caractères répétés."
    if user_name and user_name.lower() in password.lower():
        return "Mot de passe refusé : il ne doit pas contenir le nom de l'utilisateur."
    upper = any(c.isupper() for c in password)
    lower = any(c.islower() for c in password)
    digit = any(c.isdigit() for c in password)
    special = any(not c.isalnum() and not c.isspace() for c in password)
    if len(password) >= MIN_MIXED and upper and lower and digit and special:
        return None
    if len(password) >= MIN_NO_SPECIAL and upper and lower and digit:
        return None
    words = [w for w in re.split(r"[\s\-_.]+", password) if len(w) >= 3 and w.isalpha()]
    if len(words) >= MIN_PASSPHRASE_WORDS and len({w.lower() for w in words}) >= 5:
        return None
    missing = [label for label, present in (("une majuscule", upper), ("une minuscule", lower),
                                            ("un chiffre", digit),
                                            ("un caractère spécial", special)) if not present]
    detail = f" Il manque : {', '.join(missing)}." if missing else ""
    if len(password) < MIN_MIXED:
        detail = f" Il fait {len(password)} caractères." + detail
    return f"Mot de passe trop faible (règle CNIL : {RULE}).{detail}"


def check_password(password: str, user_name: str = "") -> None:
    problem = password_problem(password, user_name)
    if problem:
        raise WeakPasswordError(problem)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when it matches. With no stored hash (unknown user) a dummy hash is checked so
    the answer takes as long as for a real account."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
