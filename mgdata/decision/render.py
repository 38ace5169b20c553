"""Action: turn predicted B tokens into audio by concatenating labelled corpus segments.

The corpus is a set of stem-windows with their audio and token sequences; segment ``j`` of
a window is the audio ``[j * L, (j + 1) * L)`` (``L = segment_s * sample_rate``) and carries
the window's token ``j`` as label. For each predicted token the renderer picks a corpus
segment with that label, keeping continuity:

1. the segment that followed the previously chosen one in its source window, if it has the label;
2. else the candidate closest, in a log-spectrum feature space (32 log-energy bands), to the
   previous chosen segment (at the first position: to A's first segment);
3. a label missing from the corpus (constrained generation can fall back outside it) is
   replaced by the corpus label whose codebook centroid is nearest to it.

Segments are joined with short linear crossfades (``decision.crossfade_s``), using the audio
that followed each segment in its source for the overlap. B' and A + B' are written as FLAC.

**Any stem** (:class:`StemTokenizer`, :func:`generate_for_stem`, :func:`render_stem`): a user's file
is decoded (any format libsndfile reads, any rate and channel count -> mono), encoded with the token
artifact's own encoder (rebuilt through :func:`mgdata.tokens.frames.make_encoder` from the settings
recorded in its provenance, checked against them), condensed into segments of the artifact's
``segment_s`` (a trailing partial segment kept) and quantised with its codebook. B' is generated in
chunks of the training windows' length and rendered from the corpus as above, then cut to A's length.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgdata.audio import decode_audio, encode_flac, read_audio, resample
from mgdata.decision.data import TokenData, TokenPair, window_key
from mgdata.errors import InputError
from mgdata.store import decode_json, iter_samples, read_artifact_info

N_BANDS = 32


def read_window_audio(stems_path: str | Path, keys: Iterable[str]) -> dict[str, tuple[np.ndarray, int]]:
    """Audio of the wanted stem-windows from a stems artifact, in either layout.

    Per stem-window layout: samples keyed by the stem-window key with a ``flac`` member.
    Per pair layout: ``a.flac``/``b.flac`` of pair samples, keyed by :func:`window_key`.
    """
    wanted = set(keys)
    out: dict[str, tuple[np.ndarray, int]] = {}
    for sample in iter_samples(stems_path):
        if len(out) == len(wanted):
            break
        if "flac" in sample:
            if sample["__key__"] in wanted and sample["__key__"] not in out:
                out[sample["__key__"]] = decode_audio(sample["flac"])
        elif "a.flac" in sample:
            meta = decode_json(sample["json"])
            for side, stem in (("a", meta["stem_a"]), ("b", meta["stem_b"])):
                key = window_key(meta["track_id"], meta["window_index"], stem)
                if key in wanted and key not in out:
                    out[key] = decode_audio(sample[f"{side}.flac"])
    missing = sorted(wanted - set(out))
    if missing:
        raise InputError(
            stems_path, f"no audio for stem-window(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
        )
    return out


def band_features(seg: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """Log energies of ``n_bands`` equal-width FFT bands of a segment (a cheap timbre/pitch descriptor)."""
    spec = np.abs(np.fft.rfft(seg.astype(np.float64) * np.hanning(len(seg)))) ** 2
    bands = np.array_split(spec[1:], n_bands)
    return np.log10(np.array([b.sum() for b in bands]) + 1e-10)


@dataclasses.dataclass
class SegmentCorpus:
    """Labelled segments of a set of stem-windows (audio kept per window)."""

    sample_rate: int
    seg_len: int
    audio: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    index: list[tuple[str, int]]  # (window key, segment number), sorted
    feats: np.ndarray  # [n_segments, N_BANDS]
    by_label: dict[int, list[int]]

    @classmethod
    def build(
        cls, windows: dict[str, tuple[np.ndarray, int]], tokens: dict[str, np.ndarray], segment_s: float
    ) -> SegmentCorpus:
        """Cut every window into its token segments."""
        if not windows:
            raise InputError("render corpus", "no stem-windows to draw segments from")
        rates = {sr for _, sr in windows.values()}
        if len(rates) != 1:
            raise InputError("render corpus", f"stem-windows have several sample rates {sorted(rates)}")
        sr = rates.pop()
        seg_len = int(round(segment_s * sr))
        audio, labels, index, feats = {}, {}, [], []
        by_label: dict[int, list[int]] = {}
        for key in sorted(windows):
            x = windows[key][0]
            lab = np.asarray(tokens[key], dtype=np.int64)
            n = min(len(lab), len(x) // seg_len)
            audio[key], labels[key] = x, lab
            for j in range(n):
                by_label.setdefault(int(lab[j]), []).append(len(index))
                index.append((key, j))
                feats.append(band_features(x[j * seg_len : (j + 1) * seg_len]))
        return cls(sr, seg_len, audio, labels, index, np.array(feats).reshape(-1, N_BANDS), by_label)

    def allowed(self) -> list[int]:
        """The labels present in the corpus (the constraint of constrained generation)."""
        return sorted(self.by_label)

    def choose(self, tokens: Sequence[int], codebook: np.ndarray, first_ref: np.ndarray | None) -> list[int]:
        """Indices into ``index`` of the segment chosen for each token (continuity rules above)."""
        present = np.array(self.allowed())
        chosen: list[int] = []
        for _t, tok in enumerate(tokens):
            tok = int(tok)
            if tok not in self.by_label:  # nearest present label in codebook space
                d = np.linalg.norm(codebook[present] - codebook[tok], axis=1)
                tok = int(present[int(np.argmin(d))])
            cands = self.by_label[tok]
            if chosen:
                key, j = self.index[chosen[-1]]
                nxt = [c for c in cands if self.index[c] == (key, j + 1)]
                if nxt:
                    chosen.append(nxt[0])
                    continue
                ref = self.feats[chosen[-1]]
            else:
                ref = first_ref
            if ref is None:
                chosen.append(cands[0])
            else:
                d = np.linalg.norm(self.feats[cands] - ref, axis=1)
                chosen.append(cands[int(np.argmin(d))])
        return chosen

    def concatenate(self, chosen: Sequence[int], crossfade: int) -> np.ndarray:
        """Overlap-add the chosen segments with linear crossfades of ``crossfade`` samples."""
        L = self.seg_len
        out = np.zeros(len(chosen) * L + crossfade, dtype=np.float64)
        ramp = np.linspace(0.0, 1.0, crossfade, endpoint=False) if crossfade else np.zeros(0)
        for t, c in enumerate(chosen):
            key, j = self.index[c]
            x = self.audio[key][j * L : (j + 1) * L + crossfade].astype(np.float64)
            x = np.pad(x, (0, L + crossfade - len(x)))
            if crossfade:
                if t > 0:
                    x[:crossfade] *= ramp
                x[L:] *= ramp[::-1]
            out[t * L : t * L + len(x)] += x
        return out[: len(chosen) * L].astype(np.float32)


def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A + B' (same length), scaled down only if the sum would clip."""
    n = min(len(a), len(b))
    y = a[:n].astype(np.float64) + b[:n].astype(np.float64)
    peak = float(np.max(np.abs(y))) if n else 0.0
    return (y / peak * 0.99 if peak > 0.99 else y).astype(np.float32)


def render_tokens(
    tokens: Sequence[int],
    corpus: SegmentCorpus,
    codebook: np.ndarray,
    *,
    crossfade_s: float,
    a_audio: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """B' audio for predicted ``tokens`` and the (window key, segment) drawn for each."""
    ref = band_features(a_audio[: corpus.seg_len]) if a_audio is not None and len(a_audio) >= corpus.seg_len else None
    chosen = corpus.choose(tokens, codebook, ref)
    audio = corpus.concatenate(chosen, int(round(crossfade_s * corpus.sample_rate)))
    return audio, [corpus.index[c] for c in chosen]


def write_render(
    out_dir: str | Path, name: str, a_audio: np.ndarray, b_audio: np.ndarray, sr: int, info: dict[str, Any]
) -> dict[str, Path]:
    """Write ``{name}_b.flac`` (B'), ``{name}_mix.flac`` (A + B') and ``{name}.json``; returns the paths."""
    import json

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"b": d / f"{name}_b.flac", "mix": d / f"{name}_mix.flac", "json": d / f"{name}.json"}
    paths["b"].write_bytes(encode_flac(b_audio, sr))
    paths["mix"].write_bytes(encode_flac(mix(a_audio, b_audio), sr))
    paths["json"].write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return paths


def render_pair(
    out_dir: str | Path,
    pair: TokenPair,
    pred: np.ndarray,
    audio: dict[str, tuple[np.ndarray, int]],
    corpus: SegmentCorpus,
    codebook: np.ndarray,
    *,
    crossfade_s: float,
    **extra: Any,
) -> dict[str, Path]:
    """Render predicted tokens ``pred`` for ``pair`` as B' next to its A and write B', A + B' and the json.

    ``extra`` goes into the json beside the pair keys, the predicted and true tokens and the segments drawn.
    """
    a_audio, sr = audio[pair.a_key]
    b_audio, drawn = render_tokens(pred, corpus, codebook, crossfade_s=crossfade_s, a_audio=a_audio)
    info = {
        "pair_key": pair.pair_key,
        "a_key": pair.a_key,
        "b_key": pair.b_key,
        **extra,
        "predicted": [int(x) for x in pred],
        "ground_truth": [int(x) for x in pair.b],
        "segments": [[k, int(j)] for k, j in drawn],
        "sample_rate": sr,
    }
    return write_render(out_dir, pair.pair_key, a_audio, b_audio, sr, info)


def find_pair(data: TokenData, key: str) -> TokenPair:
    """The pair whose pair key (or ``a_key->b_key``) is ``key``.

    Raises:
        InputError: No such pair.
    """
    for p in data.pairs:
        if key in (p.pair_key, f"{p.a_key}->{p.b_key}"):
            return p
    raise InputError(data.path, f"no pair with key {key!r} in this token artifact")


def corpus_keys(data: TokenData, split: str, max_windows: int) -> list[str]:
    """The first ``max_windows`` stem-window keys (sorted) of ``split``: the render corpus."""
    keys = sorted(k for k, w in data.windows.items() if str(w["meta"].get("split")) == split)
    if not keys:
        raise InputError(f"split {split}", "no stem-windows for the render corpus (empty split)")
    return keys[:max_windows]


# --------------------------------------------------------------------------- render from any stem

#: Keys of an encoder description that name library versions, not settings (not compared).
_VERSION_KEYS = ("library", "wheel")


def _encoder_overrides(desc: dict[str, Any]) -> dict[str, Any]:
    """``tokens`` settings that make the :data:`~mgdata.tokens.config.ENCODERS` factories rebuild ``desc``.

    The inverse of the factories' argument mapping in :mod:`mgdata.tokens.frames` (e.g. ``chroma_stft``'s
    ``n_fft`` is ``tokens.chroma_n_fft`` and its ``gate_length`` is ``tokens.n_fft``).
    """
    out: dict[str, Any] = {}
    sr = int(desc.get("sample_rate", 0))
    if sr and desc.get("id") != "musicnn":
        out["sample_rate"] = sr
        if "hop_length" in desc:
            out["hop_s"] = int(desc["hop_length"]) / sr
    for key in ("n_octaves", "silence_db", "n_mels"):
        if key in desc:
            out[key] = desc[key]
    if "gate_length" in desc:
        out["n_fft"] = int(desc["gate_length"])
    if desc.get("id") == "chroma_stft":
        out["chroma_n_fft"] = int(desc["n_fft"])
    elif "n_fft" in desc:
        out["n_fft"] = int(desc["n_fft"])
    if desc.get("id") == "musicnn":
        out["embedder_params"] = {"checkpoint": desc["checkpoint"], "layer": desc["layer"]}
    return out


def _settings(desc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desc.items() if k not in _VERSION_KEYS}


@dataclasses.dataclass
class StemTokenizer:
    """Audio -> tokens exactly as a token artifact made them: its encoder, ``segment_s`` and codebook."""

    encoder: Any  # mgdata.tokens.frames.FrameEncoder
    codebook: np.ndarray
    segment_s: float

    @classmethod
    def from_artifact(cls, tokens_path: str | Path, codebook: np.ndarray, base: Any = None) -> StemTokenizer:
        """Rebuild the encoder recorded in the artifact's provenance (``extra.encoder``, ``extra.segment_s``).

        Args:
            tokens_path: Token artifact directory.
            codebook: Its codebook ``[K, dim]``.
            base: ``tokens`` settings (:class:`~mgdata.tokens.config.TokensConfig`) for what the description
                does not hold (e.g. the embedder of ``encoder: embedder``); None: the defaults.

        Raises:
            InputError: The provenance lacks the description, or the rebuilt encoder's settings differ.
        """
        from mgdata.tokens.config import TokensConfig
        from mgdata.tokens.frames import make_encoder

        where = Path(tokens_path) / "artifact.json"
        extra = read_artifact_info(tokens_path).get("provenance", {}).get("extra", {})
        desc, seg = extra.get("encoder"), extra.get("segment_s")
        if not isinstance(desc, dict) or "id" not in desc or seg is None:
            raise InputError(where, "provenance lacks extra.encoder / extra.segment_s: cannot encode new audio like it")
        cfg = dataclasses.replace(base or TokensConfig(), **_encoder_overrides(desc))
        enc = make_encoder(cfg, str(extra.get("encoder_name") or desc["id"]))
        if _settings(enc.describe()) != _settings(desc):
            raise InputError(
                where, f"encoder {desc['id']} rebuilt as {_settings(enc.describe())}, recorded {_settings(desc)}"
            )
        if int(desc.get("dim", codebook.shape[1])) != codebook.shape[1]:
            raise InputError(where, f"encoder dim {desc.get('dim')} != codebook dim {codebook.shape[1]}")
        return cls(enc, np.asarray(codebook), float(seg))

    def tokens(self, audio: np.ndarray, sr: int, *, where: str) -> np.ndarray:
        """Tokens of mono ``audio``: one per ``segment_s``, the trailing partial segment kept (int64).

        Raises:
            InputError: Empty, non-finite or too short audio (names ``where``).
        """
        from mgdata.tokens.condense import condense
        from mgdata.tokens.frames import encode_audio
        from mgdata.tokens.vq import encode

        frames = encode_audio(self.encoder, audio, sr, where=where)
        vecs = condense(frames, self.encoder.frame_rate, self.segment_s, keep_partial=True, duration_s=len(audio) / sr)
        if len(vecs) == 0:
            raise InputError(where, f"too short to hold a token ({len(audio) / sr:.3f} s)")
        return encode(vecs, self.codebook).astype(np.int64)


def generate_for_stem(
    model, a_tokens: np.ndarray, chunk: int, *, seed: int, cfg, allowed=None, roles: tuple[str, str] = ("", "")
) -> np.ndarray:
    """B tokens for A tokens of any length, generated in chunks of ``chunk`` tokens (the training windows).

    The model only saw windows of that length (its positions and A-summary are per window), so a long stem is
    cut into consecutive windows; chunk ``i`` draws from ``sequence_seed(seed, i)``, so the result is fixed by
    ``seed`` alone. ``cfg`` gives the decoding (``strategy``, ``top_k``, ``top_p``, ``temperature``); ``roles``
    the stem roles ``(A's, B's)`` a model with roles reads (a name it does not know counts as ``other``).
    """
    from mgdata.decision.generate import generate

    a = np.asarray(a_tokens, dtype=np.int64)
    chunks = [a[i : i + chunk] for i in range(0, len(a), max(1, chunk))]
    preds = generate(
        model,
        [model.source(c, *roles) for c in chunks],
        [len(c) for c in chunks],
        seed=seed,
        indices=list(range(len(chunks))),
        strategy=cfg.strategy,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        temperature=cfg.temperature,
        allowed=None if allowed is None else [allowed] * len(chunks),
    )
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def read_stem(path: str | Path) -> tuple[np.ndarray, int]:
    """A user's stem as mono float32 at its own rate (any format libsndfile decodes: wav/flac/mp3/ogg/opus).

    Raises:
        InputError: Missing, undecodable, empty or non-finite (one line naming the file).
    """
    audio, sr = read_audio(path, mono=True)
    if audio.size == 0:
        raise InputError(str(path), "no audio samples")
    if not np.isfinite(audio).all():
        raise InputError(str(path), "non-finite samples")
    return audio, sr


def render_stem(
    a_audio: np.ndarray,
    a_sr: int,
    pred: Sequence[int],
    corpus: SegmentCorpus,
    codebook: np.ndarray,
    *,
    crossfade_s: float,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """``(A, B', segments drawn)`` at the corpus rate, B' cut to A's length (A resampled to that rate)."""
    a = resample(a_audio, a_sr, corpus.sample_rate)
    b, drawn = render_tokens(pred, corpus, codebook, crossfade_s=crossfade_s, a_audio=a)
    b = np.pad(b, (0, max(0, len(a) - len(b))))[: len(a)]
    return a, b, drawn


def write_stem_render(
    out: str | Path, mix_path: str | Path | None, a: np.ndarray, b: np.ndarray, sr: int, info: dict[str, Any]
) -> dict[str, Path]:
    """Write B' to ``out`` (FLAC), A + B' to ``mix_path`` (if given) and ``info`` beside ``out`` as json."""
    import json

    paths = {"b": Path(out), "json": Path(out).with_suffix(".json")}
    if mix_path is not None:
        paths["mix"] = Path(mix_path)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    paths["b"].write_bytes(encode_flac(b, sr))
    if mix_path is not None:
        paths["mix"].write_bytes(encode_flac(mix(a, b), sr))
    paths["json"].write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return paths


__all__ = [
    "SegmentCorpus",
    "StemTokenizer",
    "band_features",
    "corpus_keys",
    "find_pair",
    "generate_for_stem",
    "mix",
    "read_stem",
    "read_window_audio",
    "render_pair",
    "render_stem",
    "render_tokens",
    "write_render",
    "write_stem_render",
]
