"""The floor: the same S3 read, provider call and S3 write as one editq job, in a plain loop,
with nothing else. editq's overhead is measured against it."""

from __future__ import annotations

import base64
import resource
import time

import boto3
import httpx
from botocore.config import Config


def run(
    *, s3_url: str, bucket: str, source: str, sim_url: str, access: str, secret: str, jobs: int
) -> dict[str, float]:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(connect_timeout=10, read_timeout=30),
    )
    http = httpx.Client(timeout=httpx.Timeout(60, connect=10))
    form = {
        "model": "gpt-image-1-mini",
        "prompt": "make it a pencil sketch",
        "size": "1024x1024",
        "quality": "low",
        "output_format": "jpeg",
        "n": "1",
        "background": "auto",
    }
    latencies = []
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(jobs):
        started = time.perf_counter()
        data = s3.get_object(Bucket=bucket, Key=source)["Body"].read()
        response = http.post(
            f"{sim_url}/images/edits",
            headers={"Authorization": "Bearer sk"},
            data=form,
            files={"image": ("a.png", data, "image/png")},
        )
        response.raise_for_status()
        out = base64.b64decode(response.json()["data"][0]["b64_json"])
        s3.put_object(Bucket=bucket, Key=f"floor/{i}.jpg", Body=out, ContentType="image/jpeg")
        latencies.append((time.perf_counter() - started) * 1000)
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    http.close()
    latencies.sort()
    return {
        "cpu_ms_per_job": cpu * 1000 / jobs,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }
