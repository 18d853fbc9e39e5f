"""The bucket as editq finds and leaves it, against moto's S3 server over the wire: lifecycle
rules merged with the operator's, buckets outside us-east-1, presigned URLs for clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from editq.storage.s3 import LIFECYCLE_RULE_ID, ObjectStore
from tests.support.stack import Services, universe

OPERATOR_RULES: list[Any] = [
    {
        "ID": "operator-logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    },
    {
        "ID": "operator-uploads",
        "Filter": {"Prefix": "incoming/"},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
    },
]


@pytest.fixture
def store_for(services: Services) -> Iterator[Any]:
    made: list[ObjectStore] = []

    def make(**env: str) -> ObjectStore:
        made.append(ObjectStore(universe(services, **env).settings))
        return made[-1]

    yield make
    for store in made:
        store.client.close()


def _rules(store: ObjectStore) -> dict[str, Any]:
    rules = store.client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    return {str(rule.get("ID")): rule for rule in rules}


def _count_lifecycle_writes(store: ObjectStore) -> list[str]:
    writes: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.PutBucketLifecycleConfiguration", lambda **_: writes.append("put")
    )
    return writes


def test_the_operators_rules_survive_every_start(store_for: Any) -> None:
    store = store_for()
    store.ensure_bucket()
    store.client.put_bucket_lifecycle_configuration(
        Bucket=store.bucket, LifecycleConfiguration={"Rules": OPERATOR_RULES}
    )
    writes = _count_lifecycle_writes(store)
    store.ensure_bucket(retention_days=7)
    store.ensure_bucket(retention_days=7)
    rules = _rules(store)
    assert set(rules) == {"operator-logs", "operator-uploads", LIFECYCLE_RULE_ID}
    assert rules["operator-logs"]["Expiration"] == {"Days": 30}
    assert rules["operator-logs"]["Filter"] == {"Prefix": "logs/"}
    assert rules["operator-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert rules[LIFECYCLE_RULE_ID]["Expiration"] == {"Days": 7}
    assert rules[LIFECYCLE_RULE_ID]["Filter"] == {"Prefix": "t/"}
    assert writes == ["put"], "an unchanged rule is not written again"

    store.ensure_bucket(retention_days=3)  # retention changed: editq's rule alone is replaced
    rules = _rules(store)
    assert set(rules) == {"operator-logs", "operator-uploads", LIFECYCLE_RULE_ID}
    assert rules[LIFECYCLE_RULE_ID]["Expiration"] == {"Days": 3}
    assert rules["operator-logs"]["Expiration"] == {"Days": 30}


def test_a_bucket_without_lifecycle_rules_gets_editqs_alone(store_for: Any) -> None:
    store = store_for()
    store.ensure_bucket(retention_days=7)
    assert list(_rules(store)) == [LIFECYCLE_RULE_ID]


def test_a_bucket_outside_us_east_1_is_created_in_its_region(store_for: Any) -> None:
    store = store_for(EDITQ_S3_REGION="eu-west-1")
    store.ensure_bucket(retention_days=7)
    store.ensure_bucket(retention_days=7)  # the second start finds it
    location = store.client.get_bucket_location(Bucket=store.bucket)["LocationConstraint"]
    assert location == "eu-west-1"
    store.put("t/x/probe.txt", b"kept", "text/plain")
    assert store.get("t/x/probe.txt") == b"kept"


def test_presigned_urls_name_the_public_endpoint_and_download(services: Services, store_for: Any) -> None:
    internal = urlsplit(services.s3_url)
    public = f"http://localhost:{internal.port}"  # the same server under the name clients use
    store = store_for(EDITQ_S3_PUBLIC_ENDPOINT_URL=public)
    store.ensure_bucket()
    store.put("t/acme/out/0.png", b"\x89PNG-bytes", "image/png")
    url = store.presign("t/acme/out/0.png", 600)
    assert urlsplit(url).netloc == f"localhost:{internal.port}"
    assert "X-Amz-Signature=" in url
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.content == b"\x89PNG-bytes"
    # reads and writes still go to the internal endpoint
    assert store.client.meta.endpoint_url == services.s3_url
    assert "localhost" not in store_for().presign("t/acme/out/0.png", 600)


def test_a_blank_public_endpoint_means_none(store_for: Any) -> None:
    store = store_for(EDITQ_S3_PUBLIC_ENDPOINT_URL="  ")
    assert store.presigner is store.client
