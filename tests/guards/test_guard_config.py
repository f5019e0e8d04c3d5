"""Configuration of the runtime guards: defaults, per-server approval and labels, and problems reported with
their paths."""

from __future__ import annotations

import pytest

from switchyard.config import parse_config
from switchyard.errors import ConfigError
from switchyard.stages import build_stages
from switchyard.stages.flows import FlowStage
from switchyard.stages.guards import OutputGuardStage


def test_guards_and_flows_are_on_by_default_and_sit_before_dispatch() -> None:
    config = parse_config({"mcpServers": {}, "switchyard": {"audit": {"enabled": False}}}, env={})
    assert config.switchyard.guards.injection == "annotate"
    assert config.switchyard.guards.secrets == "redact"
    assert config.switchyard.flows.action == "approve"
    kinds = [type(s) for s in build_stages(config, audit_sink=None).stages][-2:]
    assert kinds == [FlowStage, OutputGuardStage]


def test_per_server_approval_and_labels_accept_a_value_or_globs() -> None:
    doc = {
        "mcpServers": {
            "a": {"command": "x", "approval": "required", "labels": ["private", "untrusted"]},
            "b": {"command": "y", "approval": {"send_*": "required"}, "labels": {"post_*": ["egress"], "*": []}},
        }
    }
    config = parse_config(doc, env={})
    assert config.servers["a"].approval == "required"
    assert config.servers["b"].labels == {"post_*": ("egress",), "*": ()}


def test_a_bad_label_or_action_is_reported_with_its_path() -> None:
    doc = {
        "mcpServers": {"a": {"command": "x", "labels": ["secretive"]}},
        "switchyard": {"guards": {"injection": "shout"}, "flows": {"action": "maybe"}},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, env={})
    paths = {p.path.split("[")[0].split(".labels")[0] for p in info.value.problems}
    assert "$.mcpServers.a" in paths
    assert any(p.path.startswith("$.switchyard.guards.injection") for p in info.value.problems)
    assert any(p.path.startswith("$.switchyard.flows.action") for p in info.value.problems)


def test_flows_off_and_no_approvals_leave_the_flow_stage_out() -> None:
    settings = {"flows": {"enabled": False}, "audit": {"enabled": False}}
    config = parse_config({"mcpServers": {}, "switchyard": settings}, env={})
    assert FlowStage not in [type(s) for s in build_stages(config, audit_sink=None).stages]
