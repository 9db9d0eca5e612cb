"""The Grafana dashboard queries only metrics model_api and the gateway really export."""

from __future__ import annotations

import json
import re

from prometheus_client import REGISTRY

import model_api.metrics  # noqa: F401 - registers the metrics
import web_api.gateway.metrics  # noqa: F401 - and the gateway's
from harness import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "mlserve.json"


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every series name the services' metrics can have (labelled ones have no samples yet)."""
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def test_every_dashboard_query_names_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    queried = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            queried.update(re.findall(r"\bmlserve_\w+", target["expr"]))
    assert queried, "no MLServe metric queried"
    assert queried <= exported, queried - exported
