"""How credits show in the tenant's own answers (`GET /v1/usage`, `POST /v1/edits/estimate`)."""

from __future__ import annotations

from editq.public import Public


class CreditBalance(Public):
    """The tenant's credits: `balance` is top-ups less charges, `reserved` what its unfinished
    jobs hold, `available` what a new job may reserve. `plan` is null off any plan."""

    plan: str | None
    balance: int
    reserved: int
    available: int


class CreditEstimate(Public):
    """On a credit plan: the credits a submit would reserve (the most the job can be charged),
    and what the balance has available now."""

    plan: str
    estimated: int
    available: int
