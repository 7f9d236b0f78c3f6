"""The embedded default voice: espeak-ng's French, through the ``espeak-ng`` program.

One process per sentence costs ~20 ms, which is below one 20 ms frame of the line plus the
scheduling noise, and keeps espeak-ng's global state (it is not thread-safe as a library)
out of our process; a crash in it is a failed sentence, not a dead call.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass

from bot.audio import AudioFrame
from tts.sentences import split_sentences
from tts.voice import TtsError

BINARY = "espeak-ng"
BASE_WORDS_PER_MINUTE = 175  # espeak-ng's default speed, our rate 1.0
TIMEOUT_S = 20


@dataclass(frozen=True)
class EspeakVoice:
    binary: str
    voice: str
    rate: float
    version: str
    sample_rate: int = 22050

    @classmethod
    def load(cls, voice: str = "fr", rate: float = 1.0) -> EspeakVoice:
        binary = shutil.which(BINARY)
        if binary is None:
            raise TtsError(
                "espeak-ng est introuvable : installez le paquet Debian espeak-ng "
                "(apt-get install espeak-ng), ou configurez une voix Piper (docs/voices.md)."
            )
        check = subprocess.run([binary, "-v", voice, "-q", "x"], capture_output=True,
                               text=True, timeout=TIMEOUT_S)
        if check.returncode != 0 or "not found" in (check.stderr or "").lower():
            raise TtsError(
                f"espeak-ng ne connaît pas la voix « {voice} » ; essayez « fr » "
                "(liste : espeak-ng --voices=fr)."
            )
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=TIMEOUT_S).stdout.split("Data at")[0].strip()
        return cls(binary, voice, rate, version.replace("eSpeak NG text-to-speech: ", ""))

    @property
    def voice_id(self) -> str:
        return f"espeak-ng-{self.version}:{self.voice}"

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        for sentence in split_sentences(text):
            yield self._speak(sentence)

    def _speak(self, sentence: str) -> AudioFrame:
        words_per_minute = max(80, min(450, round(BASE_WORDS_PER_MINUTE * self.rate)))
        try:
            done = subprocess.run(
                # "--" so a sentence starting with "-" is not read as an option
                [self.binary, "-v", self.voice, "-s", str(words_per_minute), "--stdout",
                 "--", sentence],
                capture_output=True, timeout=TIMEOUT_S, check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise TtsError(f"espeak-ng a échoué sur « {sentence[:60]} » ({exc}).") from exc
        # --stdout writes a streaming header whose sizes are bogus; wave reads up to EOF.
        with wave.open(io.BytesIO(done.stdout)) as wav:
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
        return AudioFrame(pcm, rate)
