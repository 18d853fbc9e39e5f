"""The model catalogue: shipped data, overrides, aliases and retirements."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from editq import catalogue
from editq.errors import EditqError

BEFORE = date(2026, 11, 25)
AFTER = date(2026, 12, 1)


def test_shipped_models() -> None:
    cat = catalogue.load()
    assert set(cat.models) == {"gpt-image-1-mini", "gpt-image-1", "gpt-image-1.5", "gpt-image-2"}
    mini = cat.models["gpt-image-1-mini"]
    assert not mini.input_fidelity
    assert mini.retires_on == date(2026, 12, 1)
    assert mini.successor == "gpt-image-2"
    assert cat.models["gpt-image-1.5"].input_fidelity
    two = cat.models["gpt-image-2"]
    assert two.arbitrary_sizes is not None
    assert two.arbitrary_sizes.max_pixels == 8_294_400
    assert two.arbitrary_sizes.max_edge == 3840
    assert two.prices_confirmed
    assert two.prices_basis == "secondary"
    assert "tokenmix.ai" in two.notes["prices_source"]
    assert two.prices.image_output == 30
    assert two.prices.text_input_cached == Fraction("1.25")
    assert "transparent" not in two.backgrounds
    assert not two.input_fidelity
    assert two.input_fidelity_billed == "high"
    assert two.retires_on is None
    assert cat.snapshots["gpt-image-2-2026-04-21"] == "gpt-image-2"
    assert cat.default == "gpt-image-1-mini"


def test_resolution_and_retirement() -> None:
    cat = catalogue.load()
    resolved = cat.resolve("gpt-image-1-mini", aliases={}, today=BEFORE)
    assert resolved.api_name == "gpt-image-1-mini"
    assert resolved.sunset == date(2026, 12, 1)
    with pytest.raises(EditqError) as retired:
        cat.resolve("gpt-image-1-mini", aliases={}, today=AFTER)
    assert retired.value.code == "model_retired"
    assert "gpt-image-2" in retired.value.message
    assert retired.value.extra["successor"] == "gpt-image-2"
    with pytest.raises(EditqError):
        cat.resolve("gpt-image-1.5", aliases={}, today=AFTER)
    mapped = cat.resolve("gpt-image-1-mini", aliases={"gpt-image-1-mini": "gpt-image-2"}, today=AFTER)
    assert mapped.model.name == "gpt-image-2"
    assert mapped.requested == "gpt-image-1-mini"
    snapshot = cat.resolve("gpt-image-1.5-2025-12-16", aliases={}, today=BEFORE)
    assert snapshot.model.name == "gpt-image-1.5"
    assert snapshot.api_name == "gpt-image-1.5-2025-12-16"
    with pytest.raises(EditqError) as unknown:
        cat.resolve("dall-e-3", aliases={}, today=BEFORE)
    assert unknown.value.code == "model_not_found"


def test_override_file_sets_prices_and_adds_models(tmp_path: Path) -> None:
    override = tmp_path / "models.json"
    override.write_text(
        json.dumps(
            {
                "models": {
                    "gpt-image-2": {
                        "prices": {"text_input": "5", "image_input": "8", "image_output": "30"},
                        "prices_confirmed": True,
                    },
                    "gpt-image-1-mini": {"retires_on": "2027-06-01"},
                    "my-gateway-model": {"description": "a model behind an OpenAI-compatible gateway"},
                }
            }
        )
    )
    cat = catalogue.load(override)
    assert cat.models["gpt-image-2"].prices_confirmed
    assert cat.models["gpt-image-2"].prices.image_output == 30
    assert cat.resolve("gpt-image-1-mini", aliases={}, today=AFTER).model.name == "gpt-image-1-mini"
    assert cat.models["my-gateway-model"].sizes == ("1024x1024", "1536x1024", "1024x1536", "auto")
    assert not cat.models["my-gateway-model"].prices_confirmed


def test_public_view_is_json() -> None:
    for model in catalogue.load().models.values():
        json.dumps(model.public())


def test_settings_refuse_contradictions() -> None:
    from pydantic import ValidationError

    from editq.settings import Settings

    with pytest.raises(ValidationError, match="EDITQ_REUSE_WINDOW"):
        Settings.from_env({"EDITQ_REUSE_WINDOW": "100", "EDITQ_OUTPUT_RETENTION": "10"})
    with pytest.raises(ValidationError, match="placeholder"):
        Settings.from_env({"EDITQ_BOOTSTRAP_API_KEY": "changeme"})
    with pytest.raises(ValidationError, match="AZURE_OPENAI_ENDPOINT"):
        Settings.from_env({"EDITQ_PROVIDER": "azure"})
    settings = Settings.from_env(
        {"EDITQ_MODEL_ALIASES": "gpt-image-1-mini=gpt-image-2", "EDITQ_WEBHOOK_SCHEDULE": "0,1,2"}
    )
    assert settings.model_aliases == {"gpt-image-1-mini": "gpt-image-2"}
    assert settings.webhook_schedule == (0.0, 1.0, 2.0)
