"""``mgdata hub push`` and ``mgdata hub pull``.

Output names the repo, revision, commit and files; never a token (it stays inside
``huggingface_hub``, read from ``HF_TOKEN`` or the ``hf auth login`` store).
"""

from __future__ import annotations

import json

from mgdata.hub.config import HubConfig


def _policy(args):
    """The retry policy of the command line (defaults: those of params section ``hub``)."""
    cfg = HubConfig()
    return HubConfig(
        retries=cfg.retries if args.retries is None else args.retries,
        backoff_s=cfg.backoff_s if args.backoff is None else args.backoff,
        max_backoff_s=cfg.max_backoff_s if args.backoff is None else max(args.backoff, cfg.max_backoff_s),
        timeout_s=cfg.timeout_s if args.timeout is None else args.timeout,
    ).policy()


def _network_args(p) -> None:
    d = HubConfig()
    p.add_argument(
        "--retries", type=int, help=f"retries of a Hub call after 5xx/429/timeout/reset (default {d.retries})"
    )
    p.add_argument(
        "--backoff", type=float, help=f"seconds before the first retry, doubled each time (default {d.backoff_s:g})"
    )
    p.add_argument("--timeout", type=float, help=f"timeout of one HTTP request in seconds (default {d.timeout_s:g})")


def _push(args) -> int:
    from mgdata.hub.push import push_artifact

    res = push_artifact(
        args.artifact,
        args.repo,
        revision=args.revision,
        tag=args.tag,
        private=args.private,
        card=not args.no_card,
        name=args.name,
        policy=_policy(args),
    )
    if args.json:
        print(json.dumps(res.to_dict(), sort_keys=True))
    elif res.committed:
        print(
            f"{res.repo_id}@{res.revision}: commit {res.commit} ({len(res.uploaded)} uploaded, "
            f"{len(res.deleted)} deleted, {res.unchanged} unchanged)" + (f", tag {res.tag}" if res.tag else "")
        )
    else:
        print(
            f"{res.repo_id}@{res.revision}: unchanged ({res.unchanged} files), head {res.commit}, no commit"
            + (f", tag {res.tag}" if res.tag else "")
        )
    return 0


def _pull(args) -> int:
    from mgdata.hub.pull import pull_artifact

    res = pull_artifact(args.uri, args.out, force=args.force, policy=_policy(args))
    if args.json:
        print(json.dumps(res.to_dict(), sort_keys=True))
    else:
        what = "already up to date" if res.reused else f"{res.files} files, {res.shards_verified} shards verified"
        print(f"{res.uri} -> {res.out_dir}: commit {res.commit} ({what})")
    return 0


def register_cli(subparsers) -> None:
    """``mgdata hub push ARTIFACT --repo ORG/NAME ...`` and ``mgdata hub pull URI --out DIR``."""
    hub = subparsers.add_parser("hub", help="publish artifacts to / pull them from the Hugging Face Hub")
    sub = hub.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")

    p = sub.add_parser(
        "push",
        help="upload an artifact (shards, indexes, side files, card) to a dataset repo",
        description="Create the dataset repo if needed and commit the artifact's changed files only; an unchanged "
        "artifact makes no commit. The commit message carries the params hash and the code's git revision. "
        "Token: HF_TOKEN or `hf auth login` (never printed).",
    )
    p.add_argument("artifact", help="artifact directory (has artifact.json)")
    p.add_argument("--repo", required=True, help="ORG/NAME of the dataset repo")
    p.add_argument("--revision", help="branch to commit to (default main; created from main if missing)")
    p.add_argument("--tag", help="tag the resulting commit (an existing tag must already point at it)")
    p.add_argument("--private", action="store_true", help="create the repo private (if it does not exist)")
    p.add_argument("--no-card", action="store_true", help="do not upload the rendered card as README.md")
    p.add_argument("--name", help="pretty name for the card")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _network_args(p)
    p.set_defaults(func=_push)

    q = sub.add_parser(
        "pull",
        help="download hf://datasets/ORG/NAME@REVISION[/path] into a folder and verify it",
        description="Resolve the revision to a commit, download it, refuse unsafe paths and tar members, verify "
        "every shard against its index, and write hub.lock.json (resolved commit, file hashes) in --out.",
    )
    q.add_argument("uri", help="hf://datasets/ORG/NAME@REVISION[/path]")
    q.add_argument("--out", required=True, help="destination folder")
    q.add_argument("--force", action="store_true", help="download even if --out already matches its lock")
    q.add_argument("--json", action="store_true", help="print the result as one JSON object")
    _network_args(q)
    q.set_defaults(func=_pull)
