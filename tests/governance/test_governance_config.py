"""The governance sections of the configuration: defaults, validation with paths, and secrets kept out."""

from __future__ import annotations

import pytest

from switchyard.config import parse_config
from switchyard.errors import ConfigError
from switchyard.stages import build_stages
from switchyard.stages.audit import AuditStage
from switchyard.stages.policy import PolicyStage
from switchyard.stages.ratelimit import RateLimitStage


def test_defaults_require_api_keys_audit_everything_and_limit_nothing() -> None:
    settings = parse_config({}, env={}).switchyard
    assert settings.auth.mode == "api_key"
    assert settings.audit.enabled
    assert settings.audit.resolved_path(settings.store) == settings.store.resolved_path
    assert settings.policy.default == "allow"
    assert settings.limits.per_principal is None


def test_audit_is_outermost_and_policy_then_limits_follow_only_when_configured() -> None:
    bare = [type(s) for s in build_stages(parse_config({}, env={})).stages]
    assert bare[0] is AuditStage
    assert PolicyStage not in bare
    assert RateLimitStage not in bare
    governed = parse_config(
        {
            "switchyard": {
                "policy": {"rules": [{"principals": ["*"]}]},
                "limits": {"per_principal": {"rate": 1, "burst": 1}},
            }
        },
        env={},
    )
    assert [type(s) for s in build_stages(governed).stages][:3] == [AuditStage, PolicyStage, RateLimitStage]
    quiet = parse_config({"switchyard": {"audit": {"enabled": False}}}, env={})
    assert AuditStage not in [type(s) for s in build_stages(quiet).stages]
    assert build_stages(quiet).audit_store is None


def test_every_problem_is_reported_with_its_path() -> None:
    doc = {
        "switchyard": {
            "auth": {"mode": "jwt", "jwt": {"issuer": "https://a", "secret": "hunter2-secret", "algorithms": ["none"]}},
            "limits": {"per_principal": {"rate": 0, "burst": 1}},
            "policy": {"rules": [{"tools": {"allow": "not-a-list", "bogus": 1}}]},
        }
    }
    with pytest.raises(ConfigError) as info:
        parse_config(doc, env={})
    text = str(info.value)
    assert "$.switchyard.auth.jwt" in text
    assert "$.switchyard.limits.per_principal.rate" in text
    assert "$.switchyard.policy.rules[0].tools.bogus" in text
    assert "hunter2" not in text


def test_jwt_secrets_never_appear_in_a_repr() -> None:
    cfg = parse_config(
        {
            "switchyard": {
                "auth": {
                    "mode": "jwt",
                    "resource_url": "https://g.example/mcp",
                    "jwt": {"issuer": "https://a", "secret": "hunter2-secret", "algorithms": ["HS256"]},
                }
            }
        },
        env={},
    )
    assert "hunter2" not in repr(cfg.switchyard.auth)
    assert "hunter2" not in str(cfg.switchyard)
