"""MusicGen generator (Hugging Face ``transformers``), text-prompted or primed.

``MusicgenGenerator`` loads a MusicGen checkpoint with ``AutoProcessor`` and
``MusicgenForConditionalGeneration`` from a Hub id (default
``facebook/musicgen-small``; the weights download from the Hugging Face Hub, so
this needs network access or a local copy) or from a local folder saved with
``save_pretrained`` (tests use a tiny random one, see
:mod:`mgdata.generate.testing_models`).

Modes:
    text: the prompt is ``prompt_template`` filled with the request label and a
        description drawn (from the request seed) from the per-class list of the
        descriptions file; ``GenRequest.prompt`` overrides it.
    primed: the first ``prime_seconds`` of ``GenRequest.prime`` (resampled to the
        model rate, cut to a whole number of codec frames) is encoded by EnCodec
        and given as the audio prompt, together with the text prompt above. Only
        the continuation is returned: the audio after the prime, ``duration_s``
        long; the prime itself (its EnCodec reconstruction) is dropped.

Output is mono float32 at the codec rate (32 kHz for the published checkpoints);
stereo checkpoints (``musicgen-stereo-*``) are downmixed (mean of left and right) and
get the mono prime on both channels.

Determinism: ``transformers`` samples with the global torch RNG, so one batch's
samples would depend on each other and on how requests were batched. Instead,
generation runs greedy (argmax) over logits in which our own logits processor has
already made the choice: it applies classifier-free guidance, temperature, top-k and top-p (the
``transformers`` warpers) and draws each sample's tokens from its own
``torch.Generator`` seeded with ``GenRequest.seed``. A sample therefore depends
only on its own seed, prompt/prime and duration (not on its batch neighbours, up to
floating-point noise of batched kernels), and on CPU the same seed gives identical
audio, so any sample can be regenerated from its json.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mgdata.errors import DependencyError, InputError, ParamsError
from mgdata.generate.base import GenRequest
from mgdata.generate.config import MusicgenConfig
from mgdata.models import hash_model_dir, resolve_device  # noqa: F401 (re-exported)

_SECTION = "generate.musicgen"
PACKAGE_DESCRIPTIONS = "package:mgdata/generate/descriptions.yaml"


# --------------------------------------------------------------------------- helpers


def load_descriptions(path: str | None) -> tuple[dict[str, list[str]], str]:
    """Load the per-class description lists.

    Args:
        path: YAML file mapping label -> list of short descriptions; ``None`` loads the
            packaged ``mgdata/generate/descriptions.yaml``.

    Returns:
        ``(descriptions, sha256_of_file_bytes)``.

    Raises:
        ParamsError: The file is missing or not a mapping of label -> non-empty list of strings.
    """
    key = f"{_SECTION}.descriptions_file"
    if path is None:
        data = resources.files("mgdata.generate").joinpath("descriptions.yaml").read_bytes()
        where = PACKAGE_DESCRIPTIONS
    else:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ParamsError(key, f"descriptions file {str(p)!r} does not exist")
        data = p.read_bytes()
        where = str(p)
    try:
        obj = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ParamsError(key, f"{where}: not valid YAML ({exc})") from None
    if not isinstance(obj, dict) or not obj:
        raise ParamsError(key, f"{where}: expected a mapping of label -> list of descriptions")
    out: dict[str, list[str]] = {}
    for label, items in obj.items():
        if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
            raise ParamsError(key, f"{where}: label {label!r}: expected a non-empty list of strings")
        out[str(label)] = [s.strip() for s in items]
    return out, hashlib.sha256(data).hexdigest()


def _looks_like_path(model: str) -> bool:
    """True for strings that can only be a filesystem path, not a Hub ``org/name`` id."""
    return (
        model.startswith(("/", "./", "../", "~", "\\"))
        or model.count("/") > 1
        or (os.sep != "/" and os.sep in model)
        or model in (".", "..")
    )


def load_musicgen(model: str, revision: str | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """Load a MusicGen processor and model (eval mode, on ``device``).

    Args:
        model: Hub id (e.g. ``facebook/musicgen-small``) or local folder saved with
            ``save_pretrained``.
        revision: Hub revision (branch, tag or commit); ignored for local folders.
        device: Torch device string.

    Returns:
        ``(processor, model)``.

    Raises:
        DependencyError: The model cannot be loaded (no such folder; a Hub id that is
            neither cached nor downloadable, e.g. offline).
    """
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    hint = (
        f"Set {_SECTION}.model to a local folder holding a MusicGen checkpoint saved with "
        "save_pretrained (e.g. made on a connected machine with "
        "`hf download facebook/musicgen-small --local-dir DIR`)."
    )
    local = Path(model).expanduser()
    if local.is_dir():
        src, kwargs = str(local), {}
    elif _looks_like_path(model):
        raise DependencyError(f"MusicGen model folder {model!r} does not exist. {hint}")
    else:
        src, kwargs = model, ({"revision": revision} if revision else {})
    try:
        processor = AutoProcessor.from_pretrained(src, **kwargs)
        net = MusicgenForConditionalGeneration.from_pretrained(src, **kwargs)
    except (OSError, ValueError) as exc:  # HF: OSError for missing/offline repos, ValueError for bad ids
        if local.is_dir():
            raise DependencyError(f"cannot load MusicGen from folder {model!r}: {exc}") from exc
        rev = f" (revision {revision})" if revision else ""
        cause = " ".join(str(exc).split()).rstrip(".")
        raise DependencyError(
            f"cannot load MusicGen model {model!r}{rev}: its weights download from the Hugging Face Hub "
            "on first use, which needs network access (or a copy already in the Hugging Face cache, "
            f"HF_HOME). {hint} Cause: {type(exc).__name__}: {cause}."
        ) from exc
    return processor, net.to(device).eval()


def _make_sampler(
    generators: list, num_codebooks: int, guidance_scale: float, temperature: float, top_k: int, top_p: float
):
    """Logits processor that samples each request's tokens with its own generator.

    It runs first in the ``transformers`` MusicGen logits-processor list, where it sees
    the conditional and unconditional logits stacked (when guidance > 1). It applies
    the guidance itself, then temperature/top-k/top-p, draws one token per (sample,
    codebook) row from the sample's generator and returns logits that are 0 at the
    drawn token and the float minimum elsewhere, duplicated for both halves, so the
    built-in guidance processor leaves them unchanged and greedy argmax picks exactly
    the drawn token.
    """
    import torch
    from transformers import LogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    warpers = []
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k > 0:
        warpers.append(TopKLogitsWarper(top_k=top_k))
    if 0.0 < top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=top_p))
    cfg = guidance_scale > 1.0
    n = len(generators)

    class _PerSampleSampler(LogitsProcessor):
        def __call__(self, input_ids, scores):
            rows = n * num_codebooks
            if input_ids.shape[0] != rows or scores.shape[0] != (2 * rows if cfg else rows):
                raise RuntimeError(
                    f"unexpected MusicGen logits layout (input rows {input_ids.shape[0]}, score rows "
                    f"{scores.shape[0]}, expected {rows} / {2 * rows if cfg else rows}); this "
                    "transformers version changed MusicGen generation internals"
                )
            logits = scores.float()
            if cfg:
                cond, uncond = logits.split(rows, dim=0)
                logits = uncond + (cond - uncond) * guidance_scale
            for warp in warpers:
                logits = warp(input_ids, logits)
            probs = torch.softmax(logits, dim=-1)
            # Row i*K + k is codebook k of sample i (the layout MusicGen reshapes to).
            tokens = torch.cat(
                [
                    torch.multinomial(probs[i * num_codebooks : (i + 1) * num_codebooks], 1, generator=g)
                    for i, g in enumerate(generators)
                ]
            )
            out = torch.full_like(scores, torch.finfo(scores.dtype).min)
            out[:rows].scatter_(1, tokens, 0.0)
            if cfg:
                out[rows:] = out[:rows]
            return out

    return _PerSampleSampler()


# --------------------------------------------------------------------------- generator


class MusicgenGenerator:
    """MusicGen (``transformers``) as an mgdata :class:`~mgdata.generate.base.Generator`.

    Args:
        cfg: The ``generate.musicgen`` section.

    Raises:
        DependencyError: The model cannot be loaded (see :func:`load_musicgen`).
        ParamsError: Bad device, template or descriptions file.
    """

    name = "musicgen"

    def __init__(self, cfg: MusicgenConfig):
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise DependencyError(
                f"the musicgen generator needs torch and transformers ({exc}); "
                "install them with `pip install torch 'transformers>=4.45'`"
            ) from exc

        self.cfg = cfg
        self.mode = cfg.mode
        try:
            cfg.prompt_template.format(label="x", description="y")
        except (KeyError, IndexError, ValueError) as exc:
            raise ParamsError(
                f"{_SECTION}.prompt_template", f"only {{label}} and {{description}} placeholders are allowed ({exc!r})"
            ) from None
        self.descriptions, self._descriptions_sha256 = load_descriptions(cfg.descriptions_file)
        self.device = resolve_device(cfg.device, f"{_SECTION}.device")
        self.processor, self.model = load_musicgen(cfg.model, cfg.revision, self.device)
        # Sampling happens in our logits processor (see module docstring): transformers must
        # only take the argmax. Clearing the checkpoint's sampling defaults here (rather than
        # per call) also keeps generate() from warning that they are unused.
        gc = self.model.generation_config
        gc.do_sample = False
        gc.num_beams = 1
        gc.temperature = gc.top_k = gc.top_p = gc.guidance_scale = None
        codec = self.model.config.audio_encoder
        self.sample_rate = int(codec.sampling_rate)
        self.hop_length = int(np.prod(codec.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop_length
        self.num_codebooks = int(self.model.decoder.num_codebooks)
        # Stereo checkpoints interleave left/right codebooks; the delay pattern spans one channel's.
        self.audio_channels = int(self.model.config.decoder.audio_channels)
        self._delay = self.num_codebooks // self.audio_channels
        self._is_local = Path(cfg.model).expanduser().is_dir()
        self._local_hash: str | None = None
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]}

    # ---- prompts and lengths

    def prompt_for(self, request: GenRequest) -> str:
        """The text prompt used for ``request`` (record it in the sample's provenance).

        ``request.prompt`` when given; else ``prompt_template`` with ``{label}`` (underscores
        shown as spaces) and ``{description}`` drawn from the label's list with
        ``numpy.random.default_rng(request.seed)``.

        Raises:
            ParamsError: The template needs a description and the label has none.
        """
        if request.prompt:
            return request.prompt
        description = ""
        if "{description}" in self.cfg.prompt_template:
            choices = self.descriptions.get(request.label)
            if not choices:
                raise ParamsError(
                    f"{_SECTION}.descriptions_file",
                    f"no descriptions for label {request.label!r} (sample {request.key}); "
                    f"labels present: {sorted(self.descriptions)}",
                )
            description = choices[int(np.random.default_rng(request.seed).integers(len(choices)))]
        text = self.cfg.prompt_template.format(label=request.label.replace("_", " "), description=description)
        return " ".join(text.split())

    def max_new_tokens(self, duration_s: float) -> int:
        """Decoder steps for ``duration_s`` of new audio.

        MusicGen's delay pattern shifts codebook k by k steps, so ``n`` steps yield
        ``n - K + 1`` complete codec frames (K codebooks per channel).
        """
        return self._n_frames(duration_s) + self._delay - 1

    def _n_frames(self, duration_s: float) -> int:
        return max(1, math.ceil(round(duration_s * self.sample_rate) / self.hop_length))

    def _prime_samples(self) -> int:
        # A whole number of codec frames, so the prime's codes end exactly where the continuation starts.
        return max(1, round(self.cfg.prime_seconds * self.frame_rate)) * self.hop_length

    def _prepare_prime(self, request: GenRequest) -> np.ndarray:
        if request.prime is None or not request.prime_sample_rate:
            raise InputError(request.key, "primed mode needs GenRequest.prime and prime_sample_rate")
        x = np.asarray(request.prime, dtype=np.float32)
        if x.ndim != 1:
            raise InputError(request.key, f"prime must be mono [n], got shape {x.shape}")
        if int(request.prime_sample_rate) != self.sample_rate:
            from mgdata.audio import resample

            x = resample(x, int(request.prime_sample_rate), self.sample_rate)
        need = self._prime_samples()
        if len(x) + self.hop_length < need:  # allow < 1 frame of resampling/rounding shortfall
            raise InputError(
                request.key,
                f"prime is {len(x) / self.sample_rate:.3f} s, shorter than "
                f"{_SECTION}.prime_seconds={self.cfg.prime_seconds}",
            )
        x = x[:need]
        if len(x) < need:
            x = np.pad(x, (0, need - len(x)))
        return x

    # ---- Generator interface

    def describe(self) -> dict:
        """JSON-safe description for provenance: model, revision / local hash, settings, versions."""
        cfg = self.cfg
        if self._is_local and self._local_hash is None:
            self._local_hash = hash_model_dir(Path(cfg.model).expanduser())
        return {
            "generator": self.name,
            "model": cfg.model,
            "model_source": "local" if self._is_local else "hub",
            "revision": None if self._is_local else cfg.revision,
            "commit_hash": None if self._is_local else getattr(self.model.config, "_commit_hash", None),
            "local_path_hash": self._local_hash,
            "mode": cfg.mode,
            "prompt_template": cfg.prompt_template,
            "descriptions_file": cfg.descriptions_file or PACKAGE_DESCRIPTIONS,
            "descriptions_sha256": self._descriptions_sha256,
            "prime_seconds": cfg.prime_seconds if cfg.mode == "primed" else None,
            "guidance_scale": cfg.guidance_scale,
            "top_k": cfg.top_k,
            "top_p": cfg.top_p,
            "temperature": cfg.temperature,
            "batch_size": cfg.batch_size,
            "device": self.device,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "num_codebooks": self.num_codebooks,
            "audio_channels": self.audio_channels,
            "sampler": "per-request torch.Generator seeded with the request seed",
            "transformers_version": self._versions["transformers"],
            "torch_version": self._versions["torch"],
        }

    def generate(self, requests: list[GenRequest]) -> list[np.ndarray]:
        """Generate one mono float32 clip per request (same order), ``duration_s`` long each.

        Requests are run in batches of ``batch_size``; within a batch, requests of
        different lengths run as separate calls so a sample never depends on its
        neighbours' durations.

        Raises:
            InputError: A request is unusable (negative seed; missing/short prime in primed mode).
            ParamsError: A label without descriptions (see :meth:`prompt_for`).
        """
        for r in requests:
            if r.seed < 0:
                raise InputError(r.key, f"seed must be >= 0, got {r.seed}")
            if not r.duration_s > 0:
                raise InputError(r.key, f"duration_s must be > 0, got {r.duration_s}")
        out: list[np.ndarray | None] = [None] * len(requests)
        bs = self.cfg.batch_size
        for start in range(0, len(requests), bs):
            chunk = list(range(start, min(start + bs, len(requests))))
            by_len: dict[int, list[int]] = {}
            for i in chunk:
                by_len.setdefault(round(requests[i].duration_s * self.sample_rate), []).append(i)
            for n_out, idx in by_len.items():
                audio = self._generate_batch([requests[i] for i in idx], n_out)
                for i, a in zip(idx, audio):
                    out[i] = a
        return out  # type: ignore[return-value]

    def _generate_batch(self, reqs: list[GenRequest], n_out: int) -> list[np.ndarray]:
        import torch

        prompts = [self.prompt_for(r) for r in reqs]
        if self.mode == "primed":
            primes = [self._prepare_prime(r) for r in reqs]
            if self.audio_channels == 2:  # stereo checkpoints take [2, n] primes: use the mono clip twice
                primes = [np.stack([x, x]) for x in primes]
            inputs = self.processor(
                audio=primes, sampling_rate=self.sample_rate, text=prompts, padding=True, return_tensors="pt"
            )
        else:
            inputs = self.processor(text=prompts, padding=True, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}

        n_steps = self.max_new_tokens(n_out / self.sample_rate)
        n_new = n_steps - self._delay + 1  # complete frames produced
        g = self.cfg.guidance_scale
        generators = [torch.Generator(device=self.device).manual_seed(int(r.seed)) for r in reqs]
        sampler = _make_sampler(generators, self.num_codebooks, g, self.cfg.temperature, self.cfg.top_k, self.cfg.top_p)
        gen_cfg = copy.deepcopy(self.model.generation_config)
        gen_cfg.guidance_scale = g if g > 1.0 else None  # MusicGen applies CFG only for > 1
        gen_cfg.max_new_tokens = n_steps
        gen_cfg.max_length = None
        from transformers import LogitsProcessorList

        with torch.inference_mode():
            values = self.model.generate(
                **inputs, generation_config=gen_cfg, logits_processor=LogitsProcessorList([sampler])
            )
        values = values.float().mean(dim=1).cpu().numpy()  # [batch, channels, n] -> mono (stereo: L+R average)
        # The output is the (reconstructed) prime, if any, followed by n_new new frames.
        begin = values.shape[-1] - n_new * self.hop_length
        if begin < 0 or n_new * self.hop_length < n_out:
            raise RuntimeError(f"MusicGen returned {values.shape[-1]} samples, expected >= {n_new * self.hop_length}")
        return [np.ascontiguousarray(v[begin : begin + n_out], dtype=np.float32) for v in values]
