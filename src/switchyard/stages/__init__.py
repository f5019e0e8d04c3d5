"""Built-in stages, and `build_stages`: the chain a gateway runs, assembled once from configuration.

Order (the error boundary, in the front, is outermost): audit → policy → rate limit → dispatch. Audit comes
first so refusals by policy and limits are recorded; policy before limits so hidden names do not spend a
tool's or an upstream's tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from switchyard.config import GatewayConfig
from switchyard.pipeline.chain import Stage
from switchyard.stages.audit import AuditSink, AuditStage
from switchyard.stages.policy import Policy, PolicyStage
from switchyard.stages.ratelimit import Clock, RateLimitStage
from switchyard.stages.redact import Redactor
from switchyard.store.audit import SqliteAuditStore

__all__ = ["BuiltStages", "build_stages"]


@dataclass(frozen=True)
class BuiltStages:
    """The stages built from configuration, and the audit store they own (started and closed by the gateway)."""

    stages: tuple[Stage, ...]
    policy: Policy
    audit_store: SqliteAuditStore | None = None


def build_stages(
    config: GatewayConfig,
    *,
    clock: Clock = time.monotonic,
    audit_sink: AuditSink | None = None,
) -> BuiltStages:
    """The configured chain. `audit_sink` replaces the SQLite audit store (tests, embedding)."""
    settings = config.switchyard
    policy = Policy(settings.policy)
    stages: list[Stage] = []
    store: SqliteAuditStore | None = None
    audit = settings.audit
    if audit.enabled:
        sink = audit_sink
        if sink is None:
            store = SqliteAuditStore(
                audit.resolved_path(settings.store),
                synchronous=audit.synchronous,
                queue_size=audit.queue_size,
                retention_days=audit.retention_days,
            )
            sink = store
        stages.append(AuditStage(sink, Redactor(audit.redact_keys, audit.max_argument_bytes), clock=clock))
    if not policy.open:
        stages.append(PolicyStage(policy))
    limits = settings.limits
    if limits.per_principal or limits.per_principal_tool or limits.per_upstream or limits.concurrency:
        stages.append(RateLimitStage(limits, clock))
    return BuiltStages(tuple(stages), policy, store)
