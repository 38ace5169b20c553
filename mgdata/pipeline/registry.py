"""The stage registry: one :class:`StageSpec` per DVC stage.

It drives the stage scripts (``stages/<name>.py`` is ``stage_main(name)``), the
pipeline contract tests (dvc.yaml deps must hold each stage's code, params deps
must name sections it reads) and the README's pipeline table
(``mgdata stages table``).
"""

from __future__ import annotations

import dataclasses

from mgdata.errors import MgdataError
from mgdata.pipeline.spec import Arg, StageSpec

# Shared code every shard-writing stage runs: a change here reruns them (dvc.yaml deps).
CORE = (
    "mgdata/store",
    "mgdata/audio.py",
    "mgdata/config.py",
    "mgdata/provenance.py",
    "mgdata/report.py",
    "mgdata/exec.py",
    "mgdata/pipeline/main.py",
)


# What every stage's bytes also depend on, besides its code: the exact package versions and the SIMD level their
# kernels are pinned to (README, "Same bytes on every machine"). A change to either reruns every stage.
ENVIRONMENT = ("constraints.txt", "mgdata/dispatch.py")


def _tokens_name(args, raw) -> str:
    # The encoder is part of the name so two encoders never overwrite each other.
    encoder = (raw.get("tokens") or {}).get("encoder", "chroma_stft")
    return f"{encoder}-s{args.segment_s}-k{args.k}"


def _embed_name(args, raw) -> str:
    return f"{args.embedder}-{args.artifact}-{args.scenario}"


STAGES: dict[str, StageSpec] = {
    s.name: dataclasses.replace(s, code=(*s.code, *ENVIRONMENT))
    for s in (
        StageSpec(
            name="corpus",
            summary="render the chorale corpus from music21's bundled scores (stems + mix)",
            sections=("corpus", "shards"),
            run="mgdata.corpus.stage:run",
            args=(Arg("--out-dir", "data/corpus", "output folder (mix/, stems/, manifest.parquet)", path=True),),
            metrics="metrics/corpus.json",
            code=(*CORE, "mgdata/corpus", "mgdata/splits.py", "mgdata/labels"),
            library="`mgdata.corpus`",
            outputs="`data/corpus/{mix,stems}/` shards, `manifest.parquet`",
            headline=("tracks", "stems", "hours"),
        ),
        StageSpec(
            name="relabel",
            summary="map mood/theme tags to the four arousal/valence quadrants",
            sections=("relabel",),
            run="mgdata.labels.stage:run",
            args=(
                Arg(
                    "--manifest",
                    "data/corpus/manifest.parquet",
                    "corpus manifest parquet; 'none' relabels MTG-Jamendo only (relabel.jamendo.metadata_dir)",
                    path=True,
                ),
                Arg("--out-dir", "data/relabel", "where the parquet files go", path=True),
                Arg("--plots", "plots/relabel", "folder of the hours-per-class plot", path=True),
            ),
            metrics="metrics/relabel.json",
            code=(
                "mgdata/labels",
                "mgdata/sources/jamendo.py",
                "mgdata/config.py",
                "mgdata/report.py",
                "mgdata/provenance.py",
                "mgdata/pipeline/main.py",
            ),
            library="`mgdata.labels`, `mgdata.sources.jamendo`",
            outputs="`data/relabel/*.parquet`, `plots/relabel/`",
            headline=("*_tracks_labelled", "*_tracks_dropped"),
            allow_empty=True,
        ),
        StageSpec(
            name="stems",
            summary="cut every stem of every track into windows, stored once, plus the (A, B) pair index",
            sections=("stems", "shards"),
            run="mgdata.stems.stage:run",
            args=(
                Arg("--corpus-stems", "data/corpus/stems", "corpus stems artifact (stems.source: corpus)", path=True),
                Arg("--manifest", "data/corpus/manifest.parquet", "corpus manifest (labels per track)", path=True),
                Arg("--out-dir", "data/stems", "output artifact folder", path=True),
            ),
            metrics="metrics/stems.json",
            code=(
                *CORE,
                "mgdata/stems",
                "mgdata/sources/multitrack.py",
                "mgdata/sources/moisesdb.py",
                "mgdata/splits.py",
                "mgdata/tokens/frames.py",
                "mgdata/tokens/config.py",
            ),
            library="`mgdata.stems`, `mgdata.sources`",
            outputs="`data/stems/` stem-window shards + `pairs.parquet`",
            headline=("stem_windows", "pairs", "pairs_near_duplicate"),
        ),
        StageSpec(
            name="generate",
            summary="generate labelled audio within a per-class budget (resynth offline, MusicGen with weights)",
            sections=("generate", "shards"),
            run="mgdata.generate.stage:run",
            args=(
                Arg("--generator", None, "generator to run (resynth | musicgen)", required=True),
                Arg("--corpus", "data/corpus/mix", "corpus mix artifact; 'none' in text mode (labels table only)"),
                Arg(
                    "--labels",
                    "data/relabel/corpus_quadrants.parquet",
                    "labels parquet (track_id + label column)",
                    path=True,
                ),
                Arg("--out-dir", None, "artifact folder (default: data/generate/<generator>)", path=True),
            ),
            metrics="metrics/generate/{generator}.json",
            code=(*CORE, "mgdata/generate", "mgdata/models.py"),
            library="`mgdata.generate`",
            outputs="`data/generate/<generator>/` shards",
            headline=("samples_generated", "samples_failed", "total_seconds"),
            name_fn=lambda a, raw: a.generator,
        ),
        StageSpec(
            name="embed",
            summary="embed an audio artifact (clean or deformed) with a registry embedder",
            sections=("embed", "shards"),
            run="mgdata.embed.stage:run",
            args=(
                Arg("--embedder", None, "registry name (logmel | musicfeat | hf)", required=True),
                Arg("--artifact", None, "input artifact name from embed.artifacts (corpus, resynth...)", required=True),
                Arg("--artifact-dir", None, "input artifact folder (default: its path in embed.artifacts)", path=True),
                Arg("--scenario", "clean", "deformation scenario: a key of embed.scenarios"),
                Arg(
                    "--out-root",
                    "data/embed",
                    "the artifact goes to OUT_ROOT/<embedder>/<artifact>/<scenario>",
                    path=True,
                ),
            ),
            metrics="metrics/embed/{name}.json",
            code=(*CORE, "mgdata/embed", "mgdata/musicnn", "mgdata/models.py"),
            library="`mgdata.embed`",
            outputs="`data/embed/<embedder>/<artifact>/<scenario>/` shards + per-split matrices",
            headline=("embedded", "rows", "dim"),
            name_fn=_embed_name,
        ),
        StageSpec(
            name="tokens",
            summary="token sequences per stem-window: encoder frames -> segment mean -> k-means codebook",
            sections=("tokens", "shards"),
            run="mgdata.tokens.stage:run",
            args=(
                Arg("--segment-s", None, "segment length in seconds (one token per segment), e.g. 0.5", required=True),
                Arg("--k", None, "alphabet size (k-means centroids), e.g. 16", required=True),
                Arg("--stems", "data/stems", "stem-window artifact to tokenise", path=True),
                Arg(
                    "--out-root", "data/tokens", "the artifact goes to OUT_ROOT/<encoder>-s<segment_s>-k<k>", path=True
                ),
            ),
            metrics="metrics/tokens/{name}.json",
            # mgdata/embed and mgdata/musicnn: the `embedder` and `musicnn` frame encoders run them.
            code=(*CORE, "mgdata/tokens", "mgdata/stems/records.py", "mgdata/embed", "mgdata/musicnn"),
            library="`mgdata.tokens`",
            outputs="`data/tokens/<encoder>-s<seg>-k<K>/` shards + codebook + pair index",
            headline=("segment_s", "k", "usage", "entropy_bits", "pair_mi_bits", "pair_mi_shuffled_bits"),
            name_fn=_tokens_name,
        ),
        StageSpec(
            name="tokens_summary",
            summary="one table of the token statistics of every configuration of the grid",
            sections=("tokens",),
            run="mgdata.tokens.stage:run_summary",
            args=(
                Arg(
                    "--reports-dir",
                    "stage_reports/tokens",
                    "folder of the per-configuration stage reports (every number of each configuration)",
                    path=True,
                ),
                Arg(
                    "--plots", "plots/tokens/stats.csv", "CSV table of the grid (one row per configuration)", path=True
                ),
            ),
            metrics="metrics/tokens.json",
            code=("mgdata/tokens/summary.py", "mgdata/pipeline/main.py"),
            library="`mgdata.tokens`",
            outputs="`metrics/tokens.json`",
        ),
        StageSpec(
            name="classify",
            summary="classifier experiments: baseline, augmented, generated-classified, synthetic-only, robustness, FAD",
            sections=("classify",),
            run="mgdata.classify.stage:run",
            args=(
                Arg("--task", None, "label task: quadrant | mood | style | moodtheme (MediaEval 2019)", required=True),
                Arg("--embedder", None, "embedder folder under --embed-root (logmel, musicfeat)", required=True),
                Arg("--embed-root", "data/embed", "root of the embedding artifacts", path=True),
                Arg("--out-root", "data/classify", "outputs go to OUT_ROOT/<task>-<embedder>", path=True),
                Arg(
                    "--plots-dir",
                    "plots/classify",
                    "the results table goes to PLOTS_DIR/<task>-<embedder>.md, the baseline's test confusion "
                    "to PLOTS_DIR/confusion/<task>-<embedder>.csv",
                    path=True,
                ),
            ),
            metrics="metrics/classify/{name}.json",
            code=("mgdata/classify", "mgdata/store", "mgdata/config.py", "mgdata/report.py", "mgdata/pipeline/main.py"),
            library="`mgdata.classify`",
            outputs="`data/classify/<task>-<embedder>/` probes, confusion matrices, `results.md`",
            # mgdata.classify.stage.headline picks these (why these: its docstring); the patterns keep any other
            # scalar out of the metrics file. Everything else is in the stage report.
            headline=(
                "baseline_*",
                "augmented_*_rel",
                "augmented_*_rel_std",
                "generated_*_acc_source_unseen",
                "generated_*_acc_source_unseen_std",
                "synthetic_only_*",
                "fad_*",
            ),
            name_fn=lambda a, raw: f"{a.task}-{a.embedder}",
        ),
        StageSpec(
            name="geneval",
            summary="generator evaluation: learning curves with oracle/shuffled controls, paired tests, leaderboard",
            sections=("geneval",),
            run="mgdata.geneval.stage:run",
            args=(
                Arg("--task", None, "single-label task: quadrant | style", required=True),
                Arg("--embed-root", "data/embed", "root of the embedding artifacts", path=True),
                Arg("--out-root", "data/geneval", "outputs go to OUT_ROOT/<task>-<embedder>", path=True),
                Arg(
                    "--plots-dir",
                    "plots/geneval",
                    "learning curves (csv) and leaderboard (md) go to PLOTS_DIR/<task>-<embedder>.*",
                    path=True,
                ),
            ),
            metrics="metrics/geneval/{name}.json",
            code=(
                "mgdata/geneval",
                "mgdata/classify",
                "mgdata/exec.py",
                "mgdata/store",
                "mgdata/config.py",
                "mgdata/report.py",
                "mgdata/pipeline/main.py",
            ),
            library="`mgdata.geneval`",
            outputs="`data/geneval/<task>-<embedder>/` curves, leaderboard; `plots/geneval/`",
            # The leaderboard keys: gains and p per (source, f, r), synthetic-only, novelty, MDE per f.
            headline=("gain_*", "synthetic_only_*", "novelty_*", "mde_*"),
            name_fn=lambda a, raw: f"{a.task}-{(raw.get('geneval') or {}).get('embedder', 'musicfeat')}",
        ),
        StageSpec(
            name="decision",
            summary="decision Transformer: stem B's tokens from stem A's, evaluated per track against baselines",
            sections=("decision",),
            run="mgdata.decision.stage:run",
            args=(
                Arg("--segment-s", None, "segment length of the token configuration, e.g. 0.5", required=True),
                Arg("--k", None, "alphabet size of the token configuration, e.g. 16", required=True),
                Arg("--tokens-root", "data/tokens", "folder of token artifacts (<encoder>-s<seg>-k<K>)", path=True),
                Arg("--stems", "data/stems", "stem-window artifact (audio of the renders)", path=True),
                Arg("--no-render", "no", "yes: skip the audio renders"),
                Arg("--out-root", "data/decision", "outputs go to OUT_ROOT/<encoder>-s<seg>-k<K>", path=True),
                Arg("--plots-dir", "plots/decision", "plots go to PLOTS_DIR/<encoder>-s<seg>-k<K>", path=True),
            ),
            metrics="metrics/decision/{name}.json",
            code=(
                "mgdata/decision",
                "mgdata/store",
                "mgdata/audio.py",
                "mgdata/config.py",
                "mgdata/report.py",
                "mgdata/pipeline/main.py",
            ),
            library="`mgdata.decision`",
            outputs="`data/decision/<config>/` model, checkpoint, renders; `plots/decision/<config>/`",
            # Free-running TPP medians of the model and the strongest/weakest baselines, the test against
            # random (largest p over seeds), LCP and the validation loss, as means over seeds, plus the model's
            # _std over seeds. The rank-biserial effect, every _std and seed-agreement count, every other
            # baseline and setting are in the stage report: each stage's dvc metrics show stays within 30 columns.
            headline=(
                "free_tpp_model",
                "free_tpp_model_std",
                "free_tpp_random",
                "free_tpp_cond_argmax",
                "free_tpp_cond_argmax_role",
                "free_tpp_context",
                "free_p_vs_random",
                "free_perm_p_vs_cond_argmax",
                "free_perm_p_vs_cond_argmax_role",
                "free_perm_p_vs_context",
                "constrained_p_vs_random",
                "free_lcp_mean_model",
                "free_lcp_mean_model_std",
                "best_val_loss",
            ),
            name_fn=_tokens_name,
        ),
        StageSpec(
            name="jamendo",
            summary="MTG-Jamendo audio clips in the corpus mix format (outside the default pipeline: user download)",
            sections=("relabel", "shards"),
            run="mgdata.sources.stage:run_jamendo",
            args=(Arg("--out-dir", "data/jamendo", "output folder (mix/, manifest.parquet)", path=True),),
            metrics="metrics/jamendo.json",
            code=(*CORE, "mgdata/sources/jamendo_clips.py", "mgdata/sources/jamendo.py"),
            library="`mgdata.sources.jamendo_clips`",
            outputs="`data/jamendo/mix/` shards, `manifest.parquet` (not in dvc.yaml)",
        ),
        StageSpec(
            name="hub_pull",
            summary="pull a published artifact at a pinned revision into data/hub/<name>, verified",
            sections=("hub",),
            run="mgdata.hub.stage:run",
            args=(
                Arg("--name", None, "the hub.inputs entry to pull", required=True),
                Arg("--out-root", "data/hub", "the artifact goes to OUT_ROOT/<name>", path=True),
            ),
            metrics="metrics/hub/{name}.json",
            code=("mgdata/hub", "mgdata/store", "mgdata/pipeline/main.py"),
            library="`mgdata.hub`",
            outputs="`data/hub/<name>/` (+ `hub.lock.json`)",
            name_fn=lambda a, raw: a.name,
        ),
        StageSpec(
            name="report",
            summary="the static HTML site: artifacts, audio players per class, plots, results tables",
            sections=("report",),
            run="mgdata.htmlreport:run_stage",
            args=(Arg("--out", "reports", "output folder (replaced)", path=True),),
            metrics="metrics/report.json",
            code=("mgdata/htmlreport.py", "mgdata/pipeline/main.py"),
            library="`mgdata.htmlreport`",
            outputs="`reports/index.html` + `reports/media/`",
            headline=("artifacts", "clips", "images"),
        ),
    )
}


def get_stage(name: str) -> StageSpec:
    """The spec of stage ``name``.

    Raises:
        MgdataError: Unknown stage (names the known ones).
    """
    if name not in STAGES:
        raise MgdataError(f"unknown stage {name!r} (known: {', '.join(STAGES)})")
    return STAGES[name]


def readme_table() -> str:
    """The README's pipeline table, rendered from the registry."""
    rows = ["| stage (dvc.yaml) | script | library | output |", "|---|---|---|---|"]
    for s in STAGES.values():
        rows.append(f"| `{s.name}` | `{s.script}` | {s.library} | {s.outputs} |")
    return "\n".join(rows)
