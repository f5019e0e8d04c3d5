"""Built-in stages, and `build_stages`: the chain a gateway runs, assembled once from configuration.

Order (the error boundary, in the front, is outermost): audit → policy → rate limit → flows → output guard →
dispatch. Audit comes first so refusals by policy and limits are recorded; policy before limits so hidden names
do not spend a tool's or an upstream's tokens; the flow policy (and approvals) before the output guard so it
sees what the guard found in each result.

Stages that need the running gateway (its catalog, its sealer) have an `attach(gateway)` method, called by
`attach_stages` once the gateway is built.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from switchyard.config import GatewayConfig
from switchyard.pipeline.chain import Stage
from switchyard.stages.approval import Approvals
from switchyard.stages.audit import AuditSink, AuditStage
from switchyard.stages.flows import FlowStage, GatewayServices
from switchyard.stages.guards import OutputGuardStage
from switchyard.stages.policy import Policy, PolicyStage
from switchyard.stages.ratelimit import Clock, RateLimitStage
from switchyard.stages.redact import Redactor
from switchyard.store.audit import SqliteAuditStore

__all__ = ["BuiltStages", "attach_stages", "build_stages"]


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
                linger=audit.commit_interval,
                retention_days=audit.retention_days,
            )
            sink = store
        redactor = Redactor(audit.redact_keys, audit.max_argument_bytes)
        stages.append(AuditStage(sink, redactor, clock=clock, durable=audit.durable))
    limits = settings.limits
    limiter: RateLimitStage | None = None
    if limits.per_principal or limits.per_principal_tool or limits.per_upstream or limits.concurrency:
        limiter = RateLimitStage(limits, clock)
    if not policy.open:
        stages.append(PolicyStage(policy, limiter.spend_as_unknown if limiter is not None else None))
    if limiter is not None:
        stages.append(limiter)
    approval_configured = any(s.approval is not None for s in config.servers.values())
    if settings.flows.enabled or approval_configured:
        redactor = Redactor(audit.redact_keys, 1024)
        approvals = Approvals(settings.flows.approvals, settings.store.resolved_path, redactor)
        stages.append(FlowStage(config, approvals, clock=clock))
    if settings.guards.enabled:
        stages.append(OutputGuardStage(settings.guards))
    return BuiltStages(tuple(stages), policy, store)


def attach_stages(stages: Iterable[Any], gateway: GatewayServices) -> None:
    """Give every stage that has an `attach` method the running gateway (called once, by the gateway)."""
    for stage in stages:
        attach = getattr(stage, "attach", None)
        if callable(attach):
            attach(gateway)
