"""Tiny random transformers audio models saved to disk, for offline tests and benchmarks.

They are loaded by :class:`mgdata.embed.hf.HFEmbedder` through the same
``from_pretrained(path)`` path a real Hub id takes; weights are random (seeded),
so outputs are meaningless but shapes, dtypes, layer selection and determinism
are real.
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_wav2vec2(
    path: str | Path, *, sampling_rate: int = 16000, hidden_size: int = 32, num_hidden_layers: int = 2, seed: int = 0
) -> Path:
    """Save a tiny random ``Wav2Vec2Model`` + ``Wav2Vec2FeatureExtractor`` with ``save_pretrained``.

    The convolutional front end keeps wav2vec2's strides (320 samples per frame,
    50 frames/s at 16 kHz) with 16 channels; the transformer has
    ``num_hidden_layers`` layers of width ``hidden_size``.

    Args:
        path: Folder to write (created).
        sampling_rate: Declared input rate of the feature extractor.
        hidden_size: Transformer width = embedding dim.
        num_hidden_layers: Transformer layers (``num_hidden_layers + 1`` hidden states).
        seed: torch seed for the random weights.

    Returns:
        ``path``.
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = Wav2Vec2Config(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=8,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
    )
    torch.manual_seed(seed)
    model = Wav2Vec2Model(config).eval()
    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=sampling_rate,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(path)
    return path


def make_tiny_ast(path: str | Path, *, sampling_rate: int = 16000, seed: int = 0) -> Path:
    """Save a tiny random ``ASTModel`` (32-d, 2 layers, 64 mel bins, 2 s input) + ``ASTFeatureExtractor``.

    Returns:
        ``path``.
    """
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=200,
        num_mel_bins=64,
        patch_size=16,
        frequency_stride=16,
        time_stride=16,
    )
    torch.manual_seed(seed)
    ASTModel(config).eval().save_pretrained(path)
    ASTFeatureExtractor(num_mel_bins=64, max_length=200, sampling_rate=sampling_rate).save_pretrained(path)
    return path


def make_tiny_clap(path: str | Path, *, sampling_rate: int = 16000, seed: int = 0) -> Path:
    """Save a tiny random ``ClapModel`` (HTS-AT audio tower, no fusion) + ``ClapFeatureExtractor``.

    The extractor uses ``truncation="rand_trunc"`` like ``laion/clap-htsat-unfused``
    (deterministic for windows up to ``max_length_s`` = 2 s, which are padded).

    Returns:
        ``path``.
    """
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    audio = dict(
        window_size=4,
        num_mel_bins=32,
        spec_size=128,
        patch_size=4,
        patch_stride=(4, 4),
        hidden_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        patch_embeds_hidden_size=16,
        projection_dim=16,
        enable_fusion=False,
    )
    text = dict(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        projection_dim=16,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    ClapModel(ClapConfig(audio_config=audio, text_config=text, projection_dim=16)).eval().save_pretrained(path)
    ClapFeatureExtractor(
        feature_size=32,
        sampling_rate=sampling_rate,
        hop_length=160,
        max_length_s=2,
        fft_window_size=400,
        frequency_min=50,
        frequency_max=sampling_rate // 2,
        truncation="rand_trunc",
    ).save_pretrained(path)
    return path
