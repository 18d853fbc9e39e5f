"""The economy lane's domain: batch prices in the catalogue, estimates and charges at them, what
the Batch API's edit body can take, and the lines of its files."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import pytest

from editq import batchfile, catalogue, cost
from editq.catalogue import PRICE_FIELDS, Lane
from editq.errors import InvalidRequest
from editq.ops.sim.app import usage_for
from editq.options import EditPlan, parse_options, plan_edit

CAT = catalogue.load()


@pytest.mark.parametrize("name", sorted(CAT.models))
def test_every_shipped_model_has_a_batch_price_of_half_each_token_price(name: str) -> None:
    model = CAT.models[name]
    tariff = model.tariff(Lane.ECONOMY)
    for field in PRICE_FIELDS:
        standard = getattr(model.prices, field)
        assert getattr(tariff.prices, field) == (None if standard is None else standard / 2)
    assert tariff.per_image_factor == Fraction(1, 2)
    assert model.tariff(Lane.INTERACTIVE).prices == model.prices
    shown = model.public()
    assert shown["economy"] is True
    batch_shown, standard_shown = shown["batch_prices_usd_per_1m_tokens"], shown["prices_usd_per_1m_tokens"]
    assert Fraction(batch_shown["image_output"]) * 2 == Fraction(standard_shown["image_output"])


def test_a_model_without_a_batch_route_refuses_the_economy_lane() -> None:
    data = catalogue.shipped_data()
    data["models"]["gateway"] = {**data["models"]["gpt-image-1"], "batch": None, "description": "x"}
    data["models"]["own-prices"] = {
        **data["models"]["gpt-image-1"],
        "batch": {"discount": "0.5", "prices": {"image_output": "15.00"}},
    }
    parsed = catalogue.parse(data)
    with pytest.raises(InvalidRequest) as refused:
        parsed.models["gateway"].tariff(Lane.ECONOMY)
    assert refused.value.code == "economy_unsupported"
    assert refused.value.param == "priority"
    assert parsed.models["gateway"].public()["economy"] is False
    own = parsed.models["own-prices"].tariff(Lane.ECONOMY).prices
    assert own.image_output == Fraction(15)  # its own figure
    assert own.text_input == Fraction(5, 2)  # the rest at the discount
    data["models"]["broken"] = {**data["models"]["gpt-image-1"], "batch": {"discount": "1.5"}}
    with pytest.raises(ValueError, match="discount"):
        catalogue.parse(data)


def _plan(model_name: str, lane: Lane, **values: object) -> EditPlan:
    model = CAT.models[model_name]
    options = parse_options({"prompt": "make it a watercolour", **values})
    return plan_edit(options, model, model_name, image_count=1, first_image=(800, 600), lane=lane)


@pytest.mark.parametrize("name", sorted(CAT.models))
@pytest.mark.parametrize(
    ("quality", "size"),
    list(itertools.product(("low", "medium", "high", "auto"), ("1024x1024", "1536x1024", "auto"))),
)
def test_economy_estimates_bound_the_charge_at_batch_prices(name: str, quality: str, size: str) -> None:
    model = CAT.models[name]
    options = parse_options({"prompt": "make it a watercolour", "quality": quality, "size": size, "n": "2"})
    plan = plan_edit(options, model, name, image_count=1, first_image=(800, 600), lane=Lane.ECONOMY)
    economy = cost.estimate(model, plan, [(800, 600)], None, Lane.ECONOMY)
    interactive = cost.estimate(model, plan, [(800, 600)], None)
    assert economy.lane is Lane.ECONOMY
    assert economy.to_dict()["lane"] == "economy"
    # half of every price, rounded up once: at most one micro-dollar above half
    assert interactive.micros / 2 <= economy.micros <= math.ceil(interactive.micros / 2) + 1
    for resolved in ("low", "medium", "high") if quality == "auto" else (quality,):
        shown = size if size != "auto" else "1536x1024"
        usage = usage_for(model, plan.prompt, [(800, 600)], plan.input_fidelity, resolved, shown, 2)
        assert cost.charge(model, Lane.ECONOMY, usage) <= economy.micros


def test_charges_are_exact_at_batch_prices() -> None:
    mini = CAT.models["gpt-image-1-mini"]
    usage = {
        "input_tokens": 219,
        "output_tokens": 272,
        "input_tokens_details": {"text_tokens": 25, "image_tokens": 194, "cached_tokens": 5},
    }
    # (20 x 2 + 5 x 0.20 + 194 x 2.50 + 272 x 8) / 2 = 2702 / 2 micro-dollars
    assert cost.charge(mini, Lane.ECONOMY, usage) == 1351
    assert cost.charge(mini, Lane.INTERACTIVE, usage) == 2702


def test_the_economy_lane_sends_only_the_batch_bodys_sizes() -> None:
    plan = _plan("gpt-image-2", Lane.ECONOMY, aspect_ratio="16:9")
    assert plan.size == "1536x1024"
    assert plan.crop_ratio == (16, 9)
    exact = _plan("gpt-image-2", Lane.INTERACTIVE, aspect_ratio="16:9")
    assert exact.size == "1792x1008"
    assert exact.crop_ratio is None
    standard = _plan("gpt-image-2", Lane.ECONOMY, size="1024x1536")
    assert standard.size == "1024x1536"
    with pytest.raises(InvalidRequest) as refused:
        _plan("gpt-image-2", Lane.ECONOMY, size="1792x1008")
    assert refused.value.code == "economy_unsupported"
    assert refused.value.param == "size"


def test_a_request_line_carries_the_json_edit_body() -> None:
    plan = _plan("gpt-image-1.5", Lane.ECONOMY, quality="low", strength="low", output_format="webp")
    body = batchfile.request_body(
        plan,
        [batchfile.reference(file_id="file-abc")],
        batchfile.reference(url="https://s3.example/mask.png?sig=1"),
        "user-7",
    )
    line = batchfile.request_line("edit_01", body)
    assert line.endswith(b"\n")
    parsed = json.loads(line)
    assert parsed == {"custom_id": "edit_01", "method": "POST", "url": "/v1/images/edits", "body": body}
    assert body["images"] == [{"file_id": "file-abc"}]
    assert body["mask"] == {"image_url": "https://s3.example/mask.png?sig=1"}
    assert body["n"] == 1
    assert body["input_fidelity"] == "high"
    assert body["model"] == "gpt-image-1.5"
    assert body["user"] == "user-7"
    bound = batchfile.line_bound("edit_01", plan, 1, True, "user-7")
    assert len(line) <= bound
    with pytest.raises(ValueError, match="file id or a URL"):
        batchfile.reference()
    with pytest.raises(ValueError, match="longer"):
        batchfile.reference(url="https://x/" + "a" * batchfile.MAX_REFERENCE_BYTES)


def test_result_lines_are_read_strictly() -> None:
    ok = batchfile.parse_result(
        json.dumps(
            {
                "id": "batch_req_1",
                "custom_id": "edit_1",
                "response": {"status_code": 200, "request_id": "req_1", "body": {"data": []}},
                "error": None,
            }
        )
    )
    assert ok.ok
    assert ok.request_id == "req_1"
    refused = batchfile.parse_result(
        '{"custom_id": "edit_2", "response": {"status_code": 400, "body": {"error": {}}}, "error": null}'
    )
    assert not refused.ok
    assert refused.status == 400
    never = batchfile.parse_result(
        '{"custom_id": "edit_3", "response": null, "error": {"code": "batch_expired", "message": "x"}}'
    )
    assert never.status is None
    assert never.error == {"code": "batch_expired", "message": "x"}
    for broken in ("[]", '{"response": null}', '{"custom_id": "a", "response": 3}', "{"):
        with pytest.raises(ValueError):
            batchfile.parse_result(broken)
    odd = batchfile.parse_result('{"custom_id": "a", "response": {"status_code": true, "body": []}}')
    assert odd.status is None
    assert not odd.ok
