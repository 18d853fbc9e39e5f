"""The client's models read every field the server's models send (and no field they do not):
the client cannot import the server's models (they are not in its install), so this keeps the
two from drifting apart."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from editq import public
from editq.api import credit_schemas, schemas
from editq.client import models

PAIRS = [
    (models.EditJob, public.EditJob),
    (models.Output, public.Output),
    (models.Cost, public.Cost),
    (models.JobError, public.JobError),
    (models.WebhookEvent, public.WebhookEvent),
    (models.EditJobList, schemas.EditJobList),
    (models.Budget, schemas.Budget),
    (models.Usage, schemas.Usage),
    (models.Estimate, schemas.Estimate),
    (models.Image, schemas.Image),
    (models.BatchItem, schemas.BatchItem),
    (models.BatchAnswer, schemas.BatchAnswer),
    (models.JobCredits, public.JobCredits),
    (models.CreditBalance, credit_schemas.CreditBalance),
    (models.CreditEstimate, credit_schemas.CreditEstimate),
]


def names(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize(("client", "server"), PAIRS, ids=lambda m: m.__name__)
def test_the_client_reads_what_the_server_sends(client: type[BaseModel], server: type[BaseModel]) -> None:
    assert names(client) == names(server)


def test_a_usage_group_reads_both_groupings() -> None:
    assert names(models.UsageGroup) == names(schemas.UsageByDay) | names(schemas.UsageByModel)
