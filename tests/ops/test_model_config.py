"""The deployment files agree with the catalogue about models."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml

from editq import catalogue, lifecycle
from editq.lifecycle import Availability
from editq.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CAT = catalogue.load()


def test_the_k8s_configmap_leaves_the_default_to_the_chain() -> None:
    data = yaml.safe_load((ROOT / "ops/k8s/configmap.yaml").read_text())["data"]
    settings = Settings.from_env({k: str(v) for k, v in data.items()})
    assert settings.default_model is None
    assert settings.models_refresh_seconds == 3600
    for day in ("2026-11-26", "2026-12-02", "2030-01-01"):
        state = lifecycle.report(
            CAT,
            configured_default=settings.default_model,
            aliases=settings.model_aliases,
            availability=Availability(),
            today=date.fromisoformat(day),
        )
        assert state["default"] in CAT.models
        assert CAT.models[state["default"]].prices_confirmed


def test_compose_defaults_to_the_chain() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "EDITQ_DEFAULT_MODEL: ${EDITQ_DEFAULT_MODEL:-}" in compose
    assert Settings.from_env({"EDITQ_DEFAULT_MODEL": ""}).default_model is None
