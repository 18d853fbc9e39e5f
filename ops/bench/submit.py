"""Benchmark 8, submit: accepted submissions per second of ~1 MB JPEGs, 4 client threads over
real HTTP, against editq's API and against a floor ASGI handler that reads the same multipart
body and does the same S3 write and one Redis write, under the same uvicorn.

`python -m editq.ops.bench.submit serve` runs the floor (the benchmark starts it itself).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import boto3
import httpx
import redis
import uvicorn
from botocore.config import Config
from PIL import Image, ImageFilter
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from editq.ops import launcher
from editq.ops.bench.harness import ACCESS, SECRET, Editq, Services

THREADS = 4
#: What every submission asks (besides its image).
FORM = {"prompt": "make it a pencil sketch", "quality": "low", "size": "1024x1024", "output_format": "jpeg"}


def photo_jpeg(target: int = 1_000_000) -> bytes:
    """A photo-like JPEG (smoothed noise: it compresses like a photo) of about `target` bytes."""
    side = 1400
    noise = Image.frombytes("RGB", (side, side), random.Random(7).randbytes(side * side * 3))
    image = noise.filter(ImageFilter.GaussianBlur(1.2))
    best = b""
    for quality in range(95, 40, -5):
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality)
        best = out.getvalue()
        if len(best) <= target * 1.1:
            break
    return best


def variant(jpeg: bytes, n: int) -> bytes:
    """The same picture with a comment segment naming `n`: a distinct file (its own S3 object)."""
    text = f"editq bench {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]


@dataclass
class Run:
    accepted: int
    refused: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def hammer(url: str, headers: dict[str, str], jpeg: bytes, seconds: float, warmup: float = 2.0) -> Run:
    """`THREADS` clients posting multipart submissions for `warmup` + `seconds`; counts the 202s
    answered within the measured `seconds`."""
    counts = {"accepted": 0, "refused": 0}
    lock = threading.Lock()
    begin = time.monotonic() + warmup
    end = begin + seconds
    errors: list[str] = []

    def client(index: int) -> None:
        n = index * 1_000_000
        with httpx.Client(headers=headers, timeout=60) as http:
            while True:
                n += 1
                body = variant(jpeg, n)
                answer = http.post(url, data=FORM, files={"image": ("photo.jpg", body, "image/jpeg")})
                now = time.monotonic()
                if now >= end:
                    return
                if now < begin:
                    continue
                with lock:
                    if answer.status_code == 202:
                        counts["accepted"] += 1
                    else:
                        counts["refused"] += 1
                        if len(errors) < 3:
                            errors.append(f"{answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.stderr.write(f"refused: {errors}\n")
    return Run(counts["accepted"], counts["refused"], seconds)


def editq_run(services: Services, sim_url: str, jpeg: bytes, seconds: float, **settings: str) -> Run:
    """editq's API (no worker: the jobs wait in line, as a burst of submissions does)."""
    editq = Editq.create(services, sim_url, **settings)
    try:
        key = editq.tenant("acme")
        return hammer(f"{editq.api_url}/v1/edits", {"Authorization": f"Bearer {key}"}, jpeg, seconds)
    finally:
        editq.stop()


def floor_run(services: Services, jpeg: bytes, seconds: float) -> Run:
    bucket = f"floor{uuid.uuid4().hex[:6]}"
    services.s3().create_bucket(Bucket=bucket)
    port = launcher.free_port()
    env = {
        **os.environ,
        "FLOOR_S3_URL": services.s3_url,
        "FLOOR_BUCKET": bucket,
        "FLOOR_REDIS_URL": services.redis_url,
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    argv = [sys.executable, "-m", "editq.ops.bench.submit", "serve", "--port", str(port)]
    proc = launcher.spawn("floor", argv, env=env, echo=False, log=services.root / "submit-floor.log")
    try:
        launcher.wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        return hammer(f"http://127.0.0.1:{port}/v1/edits", {"Authorization": "Bearer floor"}, jpeg, seconds)
    finally:
        proc.stop()


@dataclass
class Figures:
    editq: Run
    floor: Run
    jpeg_bytes: int

    @property
    def ratio(self) -> float:
        return self.editq.per_second / self.floor.per_second if self.floor.per_second else 0.0


def measure(services: Services, sim_url: str, seconds: float) -> Figures:
    """editq's API, then the floor, each hammered for `seconds` with the same JPEG."""
    jpeg = photo_jpeg()
    return Figures(editq_run(services, sim_url, jpeg, seconds), floor_run(services, jpeg, seconds), len(jpeg))


# The floor server ---------------------------------------------------------------------------


def floor_app() -> Starlette:
    """An ASGI app: `POST /v1/edits` parses the multipart form (python-multipart, through
    Starlette, as FastAPI does), writes the image to S3 and one hash to Redis, answers 202."""
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["FLOOR_S3_URL"],
        region_name="us-east-1",
        config=Config(connect_timeout=5, read_timeout=10, max_pool_connections=64),
    )
    bucket = os.environ["FLOOR_BUCKET"]
    db = redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"], decode_responses=True, socket_timeout=5)

    def store(job_id: str, prompt: str, data: bytes) -> None:
        s3.put_object(Bucket=bucket, Key=f"src/{job_id}.jpg", Body=data, ContentType="image/jpeg")
        db.hset(f"floor:job:{job_id}", mapping={"prompt": prompt, "status": "queued", "bytes": len(data)})

    async def submit(request: Request) -> JSONResponse:
        async with request.form() as form:
            upload = form["image"]
            data = await upload.read()  # type: ignore[union-attr]
            prompt = str(form.get("prompt", ""))
        job_id = uuid.uuid4().hex
        await run_in_threadpool(store, job_id, prompt, data)
        return JSONResponse({"id": job_id, "status": "queued"}, status_code=202)

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/edits", submit, methods=["POST"]), Route("/healthz", healthz)])


def serve(port: int) -> None:
    # the same server settings as `editq api` (editq/tools/cli.py)
    uvicorn.run(floor_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m editq.ops.bench.submit")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.port)


if __name__ == "__main__":
    main()
