#!/usr/bin/env bash
# Set up allo-caf on a fresh Debian machine; safe to run again (each step checks first).
#   Debian packages -> Python 3.10 venv with the locked packages -> models -> trained bot.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
LOG=$ROOT/var/setup.log
mkdir -p var
: > "$LOG"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'Erreur : %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages -----------------------------------------------------------------
# portaudio19-dev: PyAudio builds from source; espeak-ng: the default French voice;
# sox: audio conversions in tests; baresip: the real SIP client of the tests;
# postgresql: the ledger's PostgreSQL tests start a throwaway server; kamailio: the SIP
# dispatcher in front of the media workers and nodes (docs/kamailio.md); chromium: the
# console's real-browser tests (Playwright drives the system browser, no download).
APT_PACKAGES=(portaudio19-dev espeak-ng sox libsox-fmt-all baresip postgresql kamailio chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "Paquets Debian : ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || fail "installez en root : apt-get install ${missing[*]}"
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >>"$LOG" 2>&1
  $SUDO apt-get install -y -qq "${missing[@]}" >>"$LOG" 2>&1 || fail "apt-get a échoué, voir $LOG"
  # The kamailio package enables its own service with the stock configuration (every
  # address, port 5060) where systemd runs; allo-caf starts Kamailio itself with a generated
  # configuration, so the system one must neither run nor start at boot. (Without systemd
  # its init script does nothing until /etc/default/kamailio says RUN_KAMAILIO=yes.)
  if [[ " ${missing[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now kamailio.service >>"$LOG" 2>&1 || true
  fi
fi

# --- 2. Python 3.10 (Rasa 3.6 needs Python < 3.11) ------------------------------------------
find_python() {
  local candidates=(python3.10)
  local roots=("${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv /opt/pyenv)
  for r in "${roots[@]}"; do
    for p in "$r"/versions/3.10*/bin/python3.10; do [ -x "$p" ] && candidates+=("$p"); done
  done
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  PY=$(find_python) || fail "Python 3.10 introuvable. Rasa 3.6 exige Python 3.10 : installez-le (par exemple « pyenv install 3.10.13 ») puis relancez."
  say "Environnement Python : $PY -> .venv"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi

# --- 3. Locked packages --------------------------------------------------------------------
LOCK_HASH=$(sha256sum requirements.lock | cut -c1-16)
if [ "$(cat "$VENV/.lock-hash" 2>/dev/null)" != "$LOCK_HASH" ]; then
  say "Paquets Python (requirements.lock, environ 2 minutes la première fois)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements.lock >>"$LOG" 2>&1 \
    || fail "pip install a échoué, voir $LOG"
  "$VENV/bin/pip" check >>"$LOG" 2>&1 || fail "dépendances incohérentes (pip check), voir $LOG"
  echo "$LOCK_HASH" > "$VENV/.lock-hash"
fi
if [ ! -x "$VENV/bin/voicebot" ] || ! "$VENV/bin/python" -c 'import bot' 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >>"$LOG" 2>&1 \
    || fail "installation du projet échouée, voir $LOG"
fi

# --- 4. Models -----------------------------------------------------------------------------
if [ -x scripts/models.sh ]; then
  scripts/models.sh
fi

# --- 5. The console's TLS certificate: self-signed under var/console/tls unless configured ---
"$VENV/bin/voicebot" console --certificate-only

# --- 6. The bot: validate the knowledge base, train if it changed, publish -----------------
say "Base de connaissances : vérification, entraînement si nécessaire, publication"
"$VENV/bin/voicebot" kb publish
