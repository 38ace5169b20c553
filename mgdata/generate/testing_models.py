"""A tiny, randomly initialised MusicGen for offline tests and benchmarks.

Real MusicGen checkpoints download from the Hugging Face Hub, which the test
environment cannot reach. :func:`make_tiny_musicgen` builds the same architecture
(T5 text encoder + EnCodec audio codec + MusicGen decoder) with tiny dimensions and
random weights, a T5 tokenizer trained offline with the ``tokenizers`` library, an
``EncodecFeatureExtractor`` and a ``MusicgenProcessor``, and saves everything with
``save_pretrained``. The folder then loads through exactly the code path used for
real model ids (``AutoProcessor.from_pretrained`` /
``MusicgenForConditionalGeneration.from_pretrained``), so the generator is exercised
end to end; only the audio it makes is noise-like.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

# Tiny dimensions: small enough that ~1 s of audio generates in well under a second
# on one CPU core, but with >1 codebook so the delay pattern is exercised.
TINY_SAMPLE_RATE = 16000
TINY_UPSAMPLING_RATIOS = (8, 5, 4, 2)  # hop 320 samples -> 50 frames/s, like musicgen-small
TINY_NUM_CODEBOOKS = 2
TINY_CODEBOOK_SIZE = 64

_EXTRA_SENTENCES = (
    "A track with piano, guitar, strings, drums and bass.",
    "Music in a major or minor key, fast or slow, loud or quiet.",
    "Soprano alto tenor bass chorale in four parts.",
)


def _training_sentences() -> list[str]:
    """Sentences the tiny tokenizer is trained on: the packaged class descriptions."""
    from importlib import resources

    text = resources.files("mgdata.generate").joinpath("descriptions.yaml").read_text(encoding="utf-8")
    sentences: list[str] = list(_EXTRA_SENTENCES)
    for label, descriptions in sorted(yaml.safe_load(text).items()):
        sentences.append(f"A {label.replace('_', ' ')} track.")
        sentences.extend(descriptions)
    return sentences


def _train_tokenizer(vocab_size: int = 200):
    """A T5-style (SentencePiece unigram) tokenizer trained offline on a few sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    # Special-token order matches T5: <pad>=0, </s>=1, <unk>=2.
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(_training_sentences(), trainer=trainer)
    # The trainer is multi-threaded and hash-map ordered: piece scores vary in the last bits,
    # and the rare characters it appends (scores min - 1e-4 * i) come in any order. Round the
    # scores, give those characters one shared score and sort the pieces (special tokens stay
    # first, at ids 0-2) so the same call always saves a byte-identical tokenizer.json.
    # (A lone character has no competing segmentation, so the shared score changes nothing.)
    spec = json.loads(tok.to_str())
    vocab = [(piece, round(score, 6)) for piece, score in spec["model"]["vocab"]]
    special, rest = vocab[:3], vocab[3:]
    floor = min(score for piece, score in rest if len(piece) > 1)
    tail = [score for piece, score in rest if len(piece) == 1 and score < floor]
    if tail:
        rest = [(piece, min(tail) if len(piece) == 1 and score < floor else score) for piece, score in rest]
    rest = sorted(rest, key=lambda ps: (-ps[1], ps[0]))
    spec["model"]["vocab"] = [list(ps) for ps in special + rest]
    return Tokenizer.from_str(json.dumps(spec))


def _init_codebooks(codec, seed: int) -> None:
    """Give the random EnCodec codebooks vectors at the scale of its encoder's output.

    EnCodec initialises codebooks to zeros (trained ones come from k-means on encoder
    outputs), so every code would decode to the same audio. Like that k-means init, draw
    each residual stage's codes from the statistics of what it quantizes, measured on a few
    synthetic signals, so different audio maps to different codes and back.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    sr = codec.config.sampling_rate
    t = np.arange(sr // 2) / sr
    signals = [0.3 * np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 440.0, 880.0, 1760.0, 3520.0)]
    signals += [0.3 * np.sin(2 * np.pi * (100.0 + 3000.0 * t) * t), rng.normal(0.0, 0.1, t.size)]
    x = torch.tensor(np.stack(signals)[:, None, :], dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        frames = codec.encoder(x).transpose(1, 2).reshape(-1, codec.config.hidden_size)
        residual = frames
        for layer in codec.quantizer.layers:
            mean, std = residual.mean(0), residual.std(0) + 1e-6
            embed = mean + std * torch.randn(layer.codebook.embed.shape, generator=gen)
            layer.codebook.embed.copy_(embed)
            layer.codebook.embed_avg.copy_(embed)
            residual = residual - layer.decode(layer.encode(residual[:, :, None]))[:, :, 0]


def _calibrate_decoder(codec, seed: int, target_rms: float = 0.1) -> None:
    """Make the random EnCodec decoder's output depend on the codes, at audio-like level.

    With random weights its conv biases dominate: the output is a near-constant pattern
    that barely changes with the codes. Zero those biases and scale the last conv so
    decoding random codes gives ``target_rms``.
    """
    import torch

    with torch.no_grad():
        for mod in codec.decoder.modules():
            if isinstance(mod, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)) and mod.bias is not None:
                mod.bias.zero_()
        n_q = len(codec.quantizer.layers)
        codes = torch.randint(
            0, codec.config.codebook_size, (1, 1, n_q, 50), generator=torch.Generator().manual_seed(seed)
        )
        rms = codec.decode(codes, [None]).audio_values.pow(2).mean().sqrt().item()
        last = codec.decoder.layers[-1].conv
        weight = last.parametrizations.weight.original0 if hasattr(last, "parametrizations") else last.weight
        weight.mul_(target_rms / max(rms, 1e-12))


def make_tiny_musicgen(path: str | Path, *, seed: int = 0, audio_channels: int = 1) -> Path:
    """Build and save a tiny random MusicGen (model + processor) to ``path``.

    Args:
        path: Output directory (created if missing).
        seed: Seed of the random weights (same seed -> identical weights).
        audio_channels: 1 (like musicgen-small) or 2 (like musicgen-stereo-small: the
            decoder predicts interleaved left/right codebooks of a mono codec).

    Returns:
        ``path`` as a :class:`~pathlib.Path`; loadable with
        ``AutoProcessor.from_pretrained(path)`` and
        ``MusicgenForConditionalGeneration.from_pretrained(path)``.
    """
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # One thread: the codec calibration runs convolutions whose float sums depend on the
    # thread count, and the saved weights must not.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build_and_save(path, seed, audio_channels)
    finally:
        torch.set_num_threads(n_threads)


def _text_config(tokenizer):
    """The tiny T5 text encoder's config."""
    from transformers import T5Config

    return T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )


def _audio_config():
    """The tiny EnCodec's config (one quantizer per decoder codebook)."""
    from transformers import EncodecConfig

    hop = 1
    for r in TINY_UPSAMPLING_RATIOS:
        hop *= r
    frame_rate = TINY_SAMPLE_RATE / hop
    # EnCodec uses n_q = floor(1000 * bandwidth_kbps / (frame_rate * log2(codebook_size))) quantizers;
    # MusicGen needs n_q == decoder num_codebooks.
    bandwidth = TINY_NUM_CODEBOOKS * frame_rate * math.log2(TINY_CODEBOOK_SIZE) / 1000
    return EncodecConfig(
        sampling_rate=TINY_SAMPLE_RATE,
        audio_channels=1,
        target_bandwidths=[bandwidth],
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=list(TINY_UPSAMPLING_RATIOS),
        num_lstm_layers=1,
        codebook_size=TINY_CODEBOOK_SIZE,
        use_causal_conv=False,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
    )


def _decoder_config(audio_channels: int):
    """The tiny MusicGen decoder's config."""
    from transformers import MusicgenDecoderConfig

    return MusicgenDecoderConfig(
        vocab_size=TINY_CODEBOOK_SIZE,
        max_position_embeddings=2048,
        num_hidden_layers=1,
        ffn_dim=32,
        num_attention_heads=2,
        hidden_size=16,
        num_codebooks=TINY_NUM_CODEBOOKS * audio_channels,
        audio_channels=audio_channels,
        dropout=0.0,
        # Weight std: the default 0.02 gives near-uniform logits that ignore the prompt;
        # 0.5 makes the tiny model's tokens depend on its text and audio conditioning.
        initializer_factor=0.5,
        pad_token_id=TINY_CODEBOOK_SIZE,
        bos_token_id=TINY_CODEBOOK_SIZE,
    )


def _tiny_config(tokenizer, audio_channels: int):
    """The full tiny MusicGen config (text encoder, audio codec, decoder)."""
    from transformers import MusicgenConfig

    text_cfg, audio_cfg, decoder_cfg = _text_config(tokenizer), _audio_config(), _decoder_config(audio_channels)
    if hasattr(MusicgenConfig, "from_sub_models_config"):  # transformers 4.x
        config = MusicgenConfig.from_sub_models_config(
            text_encoder_config=text_cfg, audio_encoder_config=audio_cfg, decoder_config=decoder_cfg
        )
    else:  # transformers 5 removed the classmethod; the constructor takes the sub-configs
        config = MusicgenConfig(text_encoder=text_cfg, audio_encoder=audio_cfg, decoder=decoder_cfg)
    config.decoder_start_token_id = TINY_CODEBOOK_SIZE
    config.pad_token_id = TINY_CODEBOOK_SIZE
    return config


def _build_and_save(path: Path, seed: int, audio_channels: int) -> Path:
    import torch
    from transformers import (
        EncodecFeatureExtractor,
        GenerationConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5TokenizerFast,
    )

    # T5TokenizerFast is the tokenizers-backed T5 tokenizer class (an alias of T5Tokenizer
    # in transformers 5); extra_ids=0: no sentinel tokens, the text encoder never needs them.
    tokenizer = T5TokenizerFast(tokenizer_object=_train_tokenizer(), extra_ids=0)
    config = _tiny_config(tokenizer, audio_channels)

    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config).eval()
    _init_codebooks(model.audio_encoder, seed)
    _calibrate_decoder(model.audio_encoder, seed)
    # Same generation defaults as the published checkpoints (generation_config.json of
    # facebook/musicgen-small), with the tiny model's special token ids.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=TINY_CODEBOOK_SIZE,
        pad_token_id=TINY_CODEBOOK_SIZE,
        bos_token_id=TINY_CODEBOOK_SIZE,
        do_sample=True,
        guidance_scale=3.0,
        max_length=1500,
        top_k=250,
    )
    model.save_pretrained(path)

    feature_extractor = EncodecFeatureExtractor(
        feature_size=audio_channels,
        sampling_rate=TINY_SAMPLE_RATE,
        padding_value=0.0,
        chunk_length_s=None,
        overlap=None,
    )
    MusicgenProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(path)
    return path
