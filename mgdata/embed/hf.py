"""``hf``: any Hugging Face transformers audio encoder as an embedder.

Loads ``AutoFeatureExtractor`` + ``AutoModel`` from a Hub id or a local folder
(Wav2Vec2, HuBERT, AST, CLAP, MERT with ``trust_remote_code``...). Input is
resampled to the feature extractor's ``sampling_rate``; the model's own feature
extractor prepares each window; the frames are the average of the chosen
hidden-state ``layers`` (``[-1]`` = last). With ``output: pooled`` each window
gives one vector: CLAP's projected audio embedding (``get_audio_features``) or
the model's pooler output.

Offline by default (``local_files_only``): a model that is not on disk raises
:class:`~mgdata.errors.DependencyError` saying that weights come from the Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mgdata.config import to_dict
from mgdata.embed.config import EmbedConfig, HFConfig
from mgdata.errors import DependencyError, ParamsError
from mgdata.models import hash_model_dir, resolve_device


def _missing_model_error(model: str, exc: Exception) -> DependencyError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DependencyError(
        f"cannot load Hugging Face model {model!r} offline ({type(exc).__name__}: {first[:300]}). "
        "Model weights come from the Hugging Face Hub, which this run cannot reach: on a connected machine run "
        f"`huggingface-cli download {model}` (fills the HF cache) or save the model with save_pretrained to a "
        "folder and set embed.hf.model to that folder; or set embed.hf.local_files_only: false to allow downloads."
    )


class HFEmbedder:
    """Frames from a transformers audio encoder.

    Args:
        cfg: The ``embed.hf`` settings.
        device: ``auto``, ``cpu`` or ``cuda``.

    Raises:
        DependencyError: The model or its feature extractor cannot be loaded offline.
    """

    def __init__(self, cfg: HFConfig, device: str = "auto"):
        import torch
        import transformers
        from transformers import AutoFeatureExtractor, AutoModel

        self.cfg = cfg
        self.device = resolve_device(device, "embed.device")
        local = Path(cfg.model).expanduser()
        self._local = local.is_dir()
        kwargs = dict(
            trust_remote_code=cfg.trust_remote_code, local_files_only=cfg.local_files_only, revision=cfg.revision
        )
        source = str(local) if self._local else cfg.model
        if not self._local and cfg.model.startswith(("/", "./", "../", "~")):
            raise DependencyError(
                f"Hugging Face model folder {cfg.model!r} does not exist: set embed.hf.model to a folder written "
                "by save_pretrained, or to a Hub model id whose weights are in the local HF cache "
                "(weights come from the Hugging Face Hub; download them on a connected machine)."
            )
        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(source, **kwargs)
            model = AutoModel.from_pretrained(source, **kwargs)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise _missing_model_error(cfg.model, exc) from None
        model.eval().to(self.device)
        self.model = model
        # CLAP's full model needs text inputs in forward(); its audio tower is reached
        # through get_audio_features, which also returns hidden states.
        self._clap = hasattr(model, "get_audio_features") and hasattr(model, "audio_model")
        sr = getattr(self.feature_extractor, "sampling_rate", None)
        if not sr:
            raise DependencyError(f"feature extractor of {cfg.model!r} declares no sampling_rate")
        self.sample_rate = int(sr)
        self._torch = torch
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}
        if self._local:
            self.revision = "sha256:" + hash_model_dir(local)
        else:
            self.revision = getattr(model.config, "_commit_hash", None) or (cfg.revision or "unknown")
        self.frame_rate = self._frame_rate()
        # Run one short window to learn the output dim and validate the layer indices early.
        probe = np.zeros((1, self.sample_rate), dtype=np.float32)
        self.dim = int(self.frames_batch(probe)[0].shape[1])

    def _frame_rate(self) -> float | None:
        """Frames/s of conv-front-end encoders (wav2vec2, HuBERT, MERT): rate / total conv stride."""
        if self.cfg.output != "hidden":
            return None
        config = self.model.config
        stride = getattr(config, "conv_stride", None)
        if not stride:
            return None
        return self.sample_rate / float(np.prod(stride))

    @classmethod
    def from_config(cls, cfg: EmbedConfig) -> HFEmbedder:
        """Build from the ``embed`` section."""
        return cls(cfg.hf, device=cfg.device)

    def _forward(self, windows: list[np.ndarray]):
        inputs = self.feature_extractor(windows, sampling_rate=self.sample_rate, return_tensors="pt")
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with self._torch.inference_mode():
            if self._clap:
                return self.model.get_audio_features(**inputs, output_hidden_states=True)
            return self.model(**inputs, output_hidden_states=True)

    def _select(self, out) -> Any:
        torch = self._torch
        if self.cfg.output == "pooled":
            pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                raise ParamsError("embed.hf.output", f"model {self.cfg.model!r} has no pooled output; use 'hidden'")
            return pooled[:, None, :]
        hidden = getattr(out, "hidden_states", None)
        if hidden is None:
            hidden = (out.last_hidden_state,)
        n = len(hidden)
        chosen = []
        for i in self.cfg.layers:
            if not -n <= i < n:
                raise ParamsError(
                    "embed.hf.layers",
                    f"index {i} out of range: model {self.cfg.model!r} "
                    f"has {n} hidden states (0..{n - 1}, or negative from the end)",
                )
            h = hidden[i]
            if h.ndim == 4:  # [B, C, H, W] feature maps -> tokens [B, H*W, C]
                h = h.flatten(2).transpose(1, 2)
            chosen.append(h)
        shapes = {tuple(h.shape) for h in chosen}
        if len(shapes) != 1:
            raise ParamsError(
                "embed.hf.layers",
                f"layers {self.cfg.layers} have different shapes {sorted(shapes)}; choose layers of equal width",
            )
        return torch.stack(chosen).mean(dim=0)

    def frames_batch(self, windows: np.ndarray) -> list[np.ndarray]:
        """Frames of equal-length windows ``[B, n]`` at ``sample_rate``, ``batch_size`` windows per pass."""
        result: list[np.ndarray] = []
        bs = self.cfg.batch_size
        for i in range(0, len(windows), bs):
            chunk = [np.asarray(w, dtype=np.float32) for w in windows[i : i + bs]]
            feats = self._select(self._forward(chunk)).float().cpu().numpy()
            result.extend(np.ascontiguousarray(f, dtype=np.float32) for f in feats)
        return result

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Frames ``[T, dim]`` of mono audio ``[n]`` at ``sample_rate``."""
        return self.frames_batch(np.asarray(audio, dtype=np.float32)[None, :])[0]

    def describe(self) -> dict[str, Any]:
        """Id, model revision (Hub commit or local folder hash), settings, versions, dim and input rate."""
        return {
            "id": f"hf:{self.cfg.model}",
            "model": self.cfg.model,
            "revision": self.revision,
            "model_class": type(self.model).__name__,
            "settings": to_dict(self.cfg),
            "versions": dict(self._versions),
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
        }
