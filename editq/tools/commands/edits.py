"""`editq submit` and `editq estimate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from editq.client import BatchResult, Client, EditJob, Image
from editq.client.flows import BATCH_CHUNK
from editq.tools.commands import render
from editq.tools.commands.common import console, fail, line, print_json, uses_client

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


class Refused(Exception):
    """The command line names something that cannot be sent."""


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The edit options given on the command line (None: not sent)."""
    metadata = None
    if args.metadata is not None:
        try:
            metadata = json.loads(args.metadata)
        except ValueError:
            raise Refused(f"--metadata is not JSON: {args.metadata}") from None
    return {
        "model": args.model,
        "n": args.n,
        "size": args.size,
        "aspect_ratio": args.aspect_ratio,
        "output_size": args.output_size,
        "strength": args.strength,
        "quality": args.quality,
        "output_format": args.output_format,
        "output_compression": args.output_compression,
        "background": args.background,
        "input_fidelity": args.input_fidelity,
        "priority": args.priority,
        "max_cost_usd": args.max_cost_usd,
        "metadata": metadata,
        "webhook_url": args.webhook_url,
        "webhook_events": args.webhook_events,
        "reuse": False if args.no_reuse else None,
        "user": args.user,
    }


def image_files(names: list[str]) -> tuple[list[Path], bool]:
    """The files named, and the images (by suffix) in the folders named; true when a folder
    was named."""
    paths = [Path(name) for name in names]
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise Refused(f"no such file or folder: {path}")
        if path.is_dir():
            found.extend(
                f for f in sorted(path.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            found.append(path)
    if not found:
        raise Refused("no images found")
    return found, any(p.is_dir() for p in paths)


def _edit(args: argparse.Namespace) -> tuple[list[Path], bool, dict[str, Any]]:
    """The files, whether a folder was named, and the options (`Refused` if one is wrong)."""
    files, folder = image_files(args.images)
    return files, folder, options(args)


@uses_client
def submit(args: argparse.Namespace, client: Client) -> int:
    try:
        files, folder, chosen = _edit(args)
    except Refused as exc:
        return fail(str(exc))
    if folder and len(files) > 1:
        return _submit_folder(args, client, files, chosen)
    job = client.submit(
        files,
        args.prompt,
        mask=args.mask,
        wait=args.timeout if args.wait else None,
        idempotency_key=args.idempotency_key,
        cancel_after=args.cancel_after,
        **chosen,
    )
    if args.json:
        print_json(job.raw)
    else:
        console().print(render.job_table(job))
    if not args.wait:
        return 0
    if args.out and job.succeeded:
        _saved(args, client.download(job, args.out))
    return 0 if job.succeeded else 2


def _saved(args: argparse.Namespace, paths: list[Path]) -> None:
    """The files written: on stdout, or on stderr when stdout carries JSON."""
    for path in paths:
        if args.json:
            sys.stderr.write(f"saved {path}\n")
        else:
            line(str(path))


def _submit_folder(
    args: argparse.Namespace, client: Client, files: list[Path], chosen: dict[str, Any]
) -> int:
    """A batch of one job per image: the images are uploaded once each, then submitted in
    batches; with --wait, each job is reported (and its outputs saved) as it ends."""
    uploaded: list[Image] = []
    with render.Progress(len(files), "uploading") as bar:
        for path in files:
            uploaded.append(client.upload(path))
            bar.advance()
    defaults = {"prompt": args.prompt, **chosen}
    if args.mask:
        defaults["mask_id"] = client.upload(args.mask).id
    items = [{"image_ids": [image.id]} for image in uploaded]
    if not args.wait:
        for start in range(0, len(items), BATCH_CHUNK):
            answer = client.submit_batch(
                items[start : start + BATCH_CHUNK], defaults=defaults, cancel_after=args.cancel_after
            )
            if args.json:
                line(json.dumps(answer.raw))
                continue
            for item in answer.items:
                if item.job is not None:
                    line(f"{item.job.id} {item.job.status} {files[start + item.index]}")
                else:
                    _refused(files[start + item.index], item.status, item.error or {})
        return 0
    return _wait_for_batch(args, client, files, items, defaults)


def _refused(path: Path, status: int, error: dict[str, Any]) -> None:
    sys.stderr.write(f"editq: {path}: {status} {error.get('code')}: {error.get('message')}\n")


def _wait_for_batch(
    args: argparse.Namespace,
    client: Client,
    files: list[Path],
    items: list[dict[str, Any]],
    defaults: dict[str, Any],
) -> int:
    results: list[BatchResult] = []
    with render.Progress(len(items), "editing") as bar:
        for result in client.iter_batch(items, defaults=defaults, timeout=args.timeout):
            results.append(result)
            bar.advance()
            _report(args, client, files[result.index], result)
    return 0 if all(r.succeeded for r in results) else 2


def _report(args: argparse.Namespace, client: Client, path: Path, result: BatchResult) -> None:
    job: EditJob | None = result.job
    if job is None:
        error = result.error
        sys.stderr.write(f"editq: {path}: {error}\n")
        return
    if args.json:
        line(json.dumps(job.raw))
    else:
        line(f"{job.id} {job.status} {path}")
    if args.out and job.succeeded:
        _saved(args, client.download(job, args.out))


@uses_client
def estimate(args: argparse.Namespace, client: Client) -> int:
    try:
        files, folder, chosen = _edit(args)
    except Refused as exc:
        return fail(str(exc))
    if folder:
        return fail("estimate takes the image files of one job, not a folder")
    answer = client.estimate(files, args.prompt, mask=args.mask, **chosen)
    if args.json:
        print_json(answer.raw)
    else:
        console().print(render.estimate_table(answer))
    return 0
