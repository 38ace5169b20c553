"""SoundFont rendering of score parts into mono stems, and the mix as their exact sum.

Renderer choice: **tinysoundfont** (Python bindings of TinySoundFont, MIT) with the
General-MIDI SoundFont **TimGM6mb.sf2** that ships inside the ``pretty_midi``
wheel. Why:

* it is pip-installable with no system packages: Debian's fluidsynth (the other
  renderer known to work) needs root and ``apt``; pyfluidsynth only binds it;
* it renders several hundred times faster than real time on one core
  (``bench/bench_render.py``), so the default corpus renders in seconds;
* it is deterministic (no threads, no dither, no random LFO phase), so the same
  notes give the same samples and the shards stay byte-identical.

Its wheel declares a ``pyaudio`` dependency (only for live playback, which we do
not use) whose build needs portaudio headers, hence ``pip install --no-deps
tinysoundfont``. We call the compiled ``tinysoundfont._tinysoundfont.SoundFont``
directly because the public ``Synth`` wrapper only renders stereo and has no
way to clone a loaded SoundFont (a fresh voice pool per part, shared sample
data); the mono output mode ignores panning, so a stem is the
instrument's dry sound.

Licences: tinysoundfont is MIT. TimGM6mb.sf2 (Tim Brechbill, 2004; shipped by
MuseScore 1.x, packaged by Debian as ``timgm6mb-soundfont``) is distributed under
the GPL v2 according to its upstream and Debian packaging; the .sf2 file itself
carries no licence or copyright field (its INFO chunk holds only the name
"TimGM6mb" and the tool "Awave Studio v8.5"), and pretty_midi's MIT licence file
does not mention it. See :data:`SOUNDFONT_LICENCE`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mgdata.errors import DependencyError, ParamsError
from mgdata.store import sha256_file

DEFAULT_SOUNDFONT = "TimGM6mb.sf2"
INSTALL_HINT = (
    "install the renderer with `pip install --no-deps tinysoundfont` (its pyaudio dependency is only for "
    "live playback) and pretty_midi (`pip install pretty_midi`, which ships TimGM6mb.sf2), or set "
    "corpus.soundfont to the path of a General-MIDI .sf2 file"
)
SOUNDFONT_LICENCE = (
    "rendered with TimGM6mb.sf2 by Tim Brechbill (GPL-2.0 per upstream/Debian timgm6mb-soundfont; "
    "the file embeds no licence field) via tinysoundfont (MIT)"
)

Note = tuple[float, float, int]  # (onset_s, offset_s, midi_pitch)


def default_soundfont_path() -> Path:
    """Path of TimGM6mb.sf2 inside the installed pretty_midi package.

    Raises:
        DependencyError: pretty_midi is not installed or has no SoundFont.
    """
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"pretty_midi is not installed, so {DEFAULT_SOUNDFONT} is missing: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_SOUNDFONT
    if not path.is_file():
        raise DependencyError(f"{path} not found in the pretty_midi package: {INSTALL_HINT}")
    return path


def resolve_soundfont(soundfont: str | Path | None) -> Path:
    """The SoundFont to use: ``soundfont`` if given (must exist), else pretty_midi's TimGM6mb.

    Raises:
        DependencyError: The file does not exist (says how to get one).
    """
    if soundfont is None or str(soundfont) == "":
        return default_soundfont_path()
    path = Path(soundfont).expanduser()
    if not path.is_file():
        raise DependencyError(f"SoundFont {path} (corpus.soundfont) not found: {INSTALL_HINT}")
    return path


@lru_cache(maxsize=8)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    # mtime and size are part of the cache key only, so an edited file is hashed again
    return sha256_file(path)


def soundfont_sha256(path: str | Path) -> str:
    """sha256 of a SoundFont file (cached per path, mtime and size); part of the stage fingerprint."""
    st = Path(path).stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


def gm_instrument_name(program: int) -> str:
    """General-MIDI instrument name of a 0-based program (``52`` -> ``"Choir Aahs"``)."""
    from pretty_midi.constants import INSTRUMENT_MAP

    if not 0 <= program < len(INSTRUMENT_MAP):
        raise ValueError(f"GM program must be in 0..127, got {program}")
    return INSTRUMENT_MAP[program]


def renderer_version() -> str:
    """``"tinysoundfont <version>"`` (for provenance and the fingerprint)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"tinysoundfont {version('tinysoundfont')}"
    except PackageNotFoundError:
        return "tinysoundfont unknown"


def notes_to_seconds(notes_q: Sequence[tuple[float, float, int]], tempo_bpm: float) -> list[Note]:
    """Quarter-note ``(onset_q, duration_q, pitch)`` -> ``(onset_s, offset_s, pitch)`` at ``tempo_bpm``."""
    spq = 60.0 / tempo_bpm
    return [(on * spq, (on + dur) * spq, int(p)) for on, dur, p in notes_q]


@dataclass
class RenderedTrack:
    """Stems and their mix, float32, same length.

    Attributes:
        stems: ``[n_stems, n]``.
        mix: ``[n]``; equals ``stems.sum(0)`` (up to float rounding).
        gain: The common gain applied to stems and mix to keep the mix under the peak ceiling (1.0 = none).
        sample_rate: Hz.
    """

    stems: np.ndarray
    mix: np.ndarray
    gain: float
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.mix.shape[0] / self.sample_rate


class SoundFontRenderer:
    """Renders note lists with one GM program into mono float32 audio.

    Args:
        soundfont: Path of the .sf2/.sf3 (``None``/``""``: pretty_midi's TimGM6mb.sf2).
        sample_rate: Output rate, Hz.
        max_voices: Voice cap per rendering (a part rarely needs more than a few).

    Raises:
        DependencyError: tinysoundfont is missing or the SoundFont cannot be loaded.
    """

    def __init__(self, soundfont: str | Path | None = None, sample_rate: int = 22050, max_voices: int = 256):
        try:
            from tinysoundfont import _tinysoundfont as tsf
        except ImportError as exc:
            raise DependencyError(f"tinysoundfont is not importable ({exc}): {INSTALL_HINT}") from None
        self.path = resolve_soundfont(soundfont)
        self.sample_rate = int(sample_rate)
        try:
            self._base = tsf.SoundFont(str(self.path))
        except Exception as exc:  # noqa: BLE001 - the binding raises plain RuntimeError
            raise DependencyError(f"cannot load SoundFont {self.path} ({exc}): {INSTALL_HINT}") from None
        self._tsf = tsf
        self.max_voices = int(max_voices)

    def _fresh(self):
        """A clone of the loaded SoundFont with no voices (shares the sample data; ~1 us).

        ``reset()`` is not enough: after it, the same notes render slightly
        differently (measured up to 2.5e-4) depending on what was rendered
        before, so a resumed build would not be byte-identical to an
        uninterrupted one.
        """
        sf = self._tsf.SoundFont(self._base)
        sf.set_output(self._tsf.OutputMode.Mono, self.sample_rate, 0.0)
        sf.set_max_voices(self.max_voices)
        return sf

    @property
    def name(self) -> str:
        """File name of the SoundFont."""
        return self.path.name

    def preset_index(self, program: int) -> int:
        """Index of GM bank 0 ``program`` in the SoundFont, or -1 if it has none."""
        return int(self._base.get_preset_index(0, int(program)))

    def check_programs(self, programs: Sequence[int], key: str = "corpus.programs") -> None:
        """Raise ParamsError if a program has no preset in this SoundFont."""
        missing = [p for p in programs if self.preset_index(p) < 0]
        if missing:
            raise ParamsError(key, f"GM programs {missing} have no preset in SoundFont {self.path}")

    def render_notes(self, notes: Sequence[Note], program: int, n_samples: int, velocity: int = 90) -> np.ndarray:
        """Render one part.

        Args:
            notes: ``(onset_s, offset_s, midi_pitch)``; notes past the end are ignored.
            program: GM program (bank 0).
            n_samples: Output length; sound past it is cut.
            velocity: MIDI velocity 1..127.

        Returns:
            float32 ``[n_samples]``.
        """
        preset = self.preset_index(program)
        if preset < 0:
            raise ParamsError("corpus.programs", f"GM program {program} has no preset in {self.path}")
        sr = self.sample_rate
        vel = float(velocity) / 127.0
        # Sample-accurate events; at one instant note-offs go first so a
        # repeated pitch is re-struck rather than cut.
        events: list[tuple[int, int, int]] = []
        for on_s, off_s, pitch in notes:
            start = int(round(on_s * sr))
            if start >= n_samples:
                continue
            stop = max(int(round(off_s * sr)), start + 1)
            events.append((start, 1, pitch))
            if stop < n_samples:
                events.append((stop, 0, pitch))
        events.sort()
        out = np.zeros(n_samples, dtype=np.float32)
        sf = self._fresh()  # no voice state leaks from the previous part
        pos = 0
        for at, kind, pitch in events:
            if at > pos:
                sf.render(out[pos:at].view(np.uint8))
                pos = at
            if kind:
                sf.note_on(preset, pitch, vel)
            else:
                sf.note_off(preset, pitch)
        if pos < n_samples:
            sf.render(out[pos:].view(np.uint8))
        return out

    def render_track(
        self,
        parts: Sequence[Sequence[Note]],
        programs: Sequence[int],
        n_samples: int,
        *,
        velocity: int = 90,
        peak_dbfs: float = -1.0,
    ) -> RenderedTrack:
        """Render every part as a stem; the mix is their sum, kept under ``peak_dbfs``.

        The mix is the sum of the float stems; if it (or a stem) peaks above the
        ceiling, one common gain scales stems and mix alike, so the stems still sum to
        the mix (up to PCM_16 quantisation once encoded).
        """
        if len(parts) != len(programs):
            raise ValueError(f"{len(parts)} parts but {len(programs)} programs")
        stems = np.stack([self.render_notes(n, p, n_samples, velocity) for n, p in zip(parts, programs)])
        mix = stems.sum(axis=0, dtype=np.float32)
        # Stems count too: parts in antiphase could peak above their sum.
        peak = float(max(np.max(np.abs(mix)), np.max(np.abs(stems)))) if mix.size else 0.0
        ceiling = 10.0 ** (peak_dbfs / 20.0)
        gain = ceiling / peak if peak > ceiling else 1.0
        if gain != 1.0:
            stems *= np.float32(gain)
            mix = stems.sum(axis=0, dtype=np.float32)
        return RenderedTrack(stems=stems, mix=mix, gain=float(gain), sample_rate=self.sample_rate)
