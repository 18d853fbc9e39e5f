"""The Python client of the editq API: `Client` (sync) and `AsyncClient` (asyncio or trio).

    from editq.client import Client

    with Client() as editq:                       # EDITQ_API_URL, EDITQ_API_KEY
        job = editq.submit("photo.png", "make it a pencil sketch", strength="low", wait=120)
        editq.download(job, "results/")

Both run the same flows (`editq.client.flows`): requests retried on 429/503 and connection
failures (honouring `Retry-After`), an `Idempotency-Key` on every submit, waits that use
`Prefer: wait`, then the job's server-sent events, then polling. Answers are typed
(`editq.client.models`); failures raise `EditqError` subclasses (`editq.client.errors`).
Installed alone (`pip install editq`), it needs none of the server's packages.
"""

from editq.client.aio import AsyncClient
from editq.client.errors import (
    BadRequest,
    BudgetExceeded,
    Conflict,
    ConnectionFailed,
    EditqError,
    Forbidden,
    InvalidWebhook,
    JobFinished,
    JobNotSucceeded,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    RequestTimeout,
    ServerError,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMedia,
)
from editq.client.inputs import EditOptions
from editq.client.models import (
    TERMINAL,
    BatchAnswer,
    BatchResult,
    Budget,
    EditJob,
    EditJobList,
    Estimate,
    Image,
    Usage,
    WebhookEvent,
)
from editq.client.retry import NO_RETRIES, RetryPolicy
from editq.client.sync import Client
from editq.client.webhooks import verify_webhook

__all__ = [
    "NO_RETRIES",
    "TERMINAL",
    "AsyncClient",
    "BadRequest",
    "BatchAnswer",
    "BatchResult",
    "Budget",
    "BudgetExceeded",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "EditJob",
    "EditJobList",
    "EditOptions",
    "EditqError",
    "Estimate",
    "Forbidden",
    "Image",
    "InvalidWebhook",
    "JobFinished",
    "JobNotSucceeded",
    "NotFound",
    "PayloadTooLarge",
    "PaymentRequired",
    "RateLimited",
    "RequestTimeout",
    "RetryPolicy",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "UnsupportedMedia",
    "Usage",
    "WebhookEvent",
    "verify_webhook",
]
