"""S3 objects: sources (content-addressed per tenant) and outputs (per job)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from editq.storage.errors import StorageError, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from editq.settings import Settings

_UNAVAILABLE = (EndpointConnectionError, BotoCoreError)
_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")
#: The ID of editq's expiry rule among the bucket's lifecycle rules (others are left alone).
LIFECYCLE_RULE_ID = "editq-output-retention"
log = logging.getLogger("editq.storage")
T = TypeVar("T")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _server_error(exc: ClientError) -> bool:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0) >= 500


def _fail(exc: Exception) -> StorageError:
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
            return StorageUnavailable(f"s3: {code or status}")
        return StorageError(f"s3: {code or status}: {exc}")
    return StorageUnavailable(f"s3: {exc}")


class ObjectStore:
    """One bucket, one boto3 client per process, every call with a timeout."""

    def __init__(
        self, settings: Settings, *, timeout: float | None = None, attempts: int = 3, server_retries: int = 0
    ) -> None:
        """`timeout` (connect and read, default `EDITQ_S3_TIMEOUT`) and `attempts` per call, the
        first included, by botocore (timeouts included); `server_retries`: our own immediate
        retries of a call S3 answered with a 5xx (an answer, unlike a timeout, comes back fast)."""
        self.bucket = settings.s3_bucket
        self.settings = settings
        self.server_retries = server_retries
        timeout = settings.s3_timeout_seconds if timeout is None else timeout
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"total_max_attempts": attempts, "mode": "standard"},
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                max_pool_connections=64,
            ),
        )
        #: Signs presigned URLs for the endpoint clients reach (it never sends a request).
        self.presigner: S3Client = (
            self.client
            if not settings.s3_public_endpoint_url
            else boto3.client(
                "s3",
                endpoint_url=settings.s3_public_endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
                config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
            )
        )

    def ensure_bucket(self, retention_days: int | None = None) -> None:
        """Create the bucket if missing (in `EDITQ_S3_REGION`), and, given `retention_days`, keep
        editq's expiry rule for outputs among the bucket's lifecycle rules where supported."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise _fail(exc) from exc
            self._create_bucket()
        except _UNAVAILABLE as exc:
            raise _fail(exc) from exc
        if retention_days:
            self._lifecycle(retention_days)

    def _create_bucket(self) -> None:
        region = self.settings.s3_region
        try:
            if region == "us-east-1":  # the one region that refuses a LocationConstraint
                self.client.create_bucket(Bucket=self.bucket)
            else:
                where: Any = {"LocationConstraint": region}
                self.client.create_bucket(Bucket=self.bucket, CreateBucketConfiguration=where)
        except ClientError as exc:
            # another process created it between our HEAD and this call
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _fail(exc) from exc
        except _UNAVAILABLE as exc:
            raise _fail(exc) from exc

    def _lifecycle(self, days: int) -> None:
        """Add or replace editq's rule (by its ID) and keep every other rule the bucket has."""
        ours: Any = {
            "ID": LIFECYCLE_RULE_ID,
            "Filter": {"Prefix": "t/"},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        try:
            current: dict[str, Any] = dict(self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket))
        except ClientError as exc:
            if _code(exc) != "NoSuchLifecycleConfiguration":
                log.info("s3: no lifecycle rules on this endpoint (%s); beat deletes old outputs", _code(exc))
                return
            current = {"Rules": []}
        except _UNAVAILABLE as exc:
            log.warning("s3: lifecycle rules not read (%s); beat deletes old outputs", exc)
            return
        rules: list[Any] = current.get("Rules", [])
        if ours in rules:
            return
        merged = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID] + [ours]
        extra = {k: current[k] for k in ("TransitionDefaultMinimumObjectSize",) if k in current}
        try:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": merged}, **extra
            )
        except (ClientError, *_UNAVAILABLE) as exc:
            log.warning("s3: lifecycle rule not written (%s); beat deletes old outputs", exc)

    def _call(self, call: Callable[[], T]) -> T:
        for attempt in range(self.server_retries + 1):
            try:
                return call()
            except ClientError as exc:
                if attempt == self.server_retries or not _server_error(exc):
                    raise
        raise AssertionError("unreachable")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._call(
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
                )
            )
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc

    def get(self, key: str) -> bytes:
        try:
            response = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
            return response["Body"].read()
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc

    def open(self, key: str) -> tuple[Any, str, int]:
        """A streaming body, its content type and length."""
        try:
            response = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc
        return response["Body"], response.get("ContentType", ""), response.get("ContentLength", 0)

    def copy(self, source: str, target: str) -> None:
        try:
            self._call(
                lambda: self.client.copy_object(
                    Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
                )
            )
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                keys: list[Any] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                    deleted += len(keys)
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc
        return deleted

    def list_keys(self, prefix: str) -> list[str]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc

    def presign(self, key: str, seconds: int) -> str:
        """A GET URL for `key`, signed for `EDITQ_S3_PUBLIC_ENDPOINT_URL` when set."""
        return self.presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, *_UNAVAILABLE) as exc:
            raise _fail(exc) from exc
