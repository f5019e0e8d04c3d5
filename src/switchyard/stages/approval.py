"""Asking a human to approve one call: by elicitation, by an input-required result, or by the CLI.

Owns `Approvals.obtain`, which returns only once the call may proceed (or raises `PolicyDenied`), choosing the
channel by what the caller can do:

1. a retry that answers the gateway's own approval question (modern clients) is checked: the sealed
   `requestState` must name this very call;
2. an earlier decision for the same call (the CLI, or an earlier answer) that has not expired applies;
3. a legacy session whose client declared elicitation is asked in-band: the front pushes `elicitation/create`
   (through the `INPUT_BRIDGE` the front sets around each legacy call) and the call waits, bounded;
4. a 2026-07-28 client that declared elicitation on the request gets an `input_required` result carrying the
   question and a `requestState` sealed by the gateway's sealer, bound to the caller, the tool and the approval
   id; its retry with an accept proceeds;
5. otherwise the call is refused, recorded as pending in the store, with the command that approves it.

Does not own when approval is needed (stages/flows.py) or the store (approvals.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

import anyio
import anyio.to_thread
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from switchyard.approvals import CallApproval, SqliteApprovalStore, approval_id
from switchyard.config import ApprovalSettings
from switchyard.errors import InvalidRequest, PolicyDenied
from switchyard.pipeline.context import CallContext
from switchyard.sealing import Sealer
from switchyard.security import redact, redaction_spans, scan_text
from switchyard.stages.audit import note_decision
from switchyard.stages.redact import Redactor
from switchyard.upstream.base import JsonObject
from switchyard.upstream.bridge import INPUT_BRIDGE

__all__ = ["APPROVAL_KEY", "Approvals", "accepted", "approval_question"]

APPROVAL_KEY = "switchyard.approval"
"""The key of the gateway's own question in `inputRequests` / `inputResponses`."""
_STATE_KEY = "approval"
_SEALED_FOR = "switchyard.approval:"
"""Prefix of the `server` an approval envelope is sealed for, so no upstream's state can pass for one."""
_ELICIT = "elicitation/create"


class HasSealer(Protocol):
    """What approvals need from the running gateway."""

    @property
    def sealer(self) -> Sealer:
        """Seals and opens `requestState` envelopes."""
        ...


def accepted(answer: Any) -> bool:
    """Whether an elicitation answer approves: `accept`, and not `approve: false` in its content."""
    if not isinstance(answer, Mapping):
        return False
    reply = cast(Mapping[str, Any], answer)
    content: Any = reply.get("content")
    said_no = isinstance(content, Mapping) and cast(Mapping[str, Any], content).get("approve") is False
    return reply.get("action") == "accept" and not said_no


def approval_question(tool: str, server: str, reason: str, preview: str) -> JsonObject:
    """The form elicitation asking the user to allow one call."""
    return {
        "mode": "form",
        "message": (f"Switchyard asks: allow '{tool}' (server '{server}') to run?\n{reason}\nArguments: {preview}"),
        "requestedSchema": {
            "type": "object",
            "properties": {
                "approve": {"type": "boolean", "title": "Allow this call", "default": True},
            },
            "required": ["approve"],
        },
    }


def _declares_form_elicitation(caps: Mapping[str, Any] | None) -> bool:
    found: Any = (caps or {}).get("elicitation")
    if not isinstance(found, Mapping):
        return False
    modes = cast(Mapping[str, Any], found)
    return "form" in modes or "url" not in modes  # an empty object means form (the 2025-06-18 shape)


def _stripped(ctx: CallContext) -> CallContext:
    params = {k: v for k, v in ctx.params.items() if k not in ("requestState", "inputResponses")}
    return dataclasses.replace(ctx, params=params)


class Approvals:
    """Obtains human approval for calls; the store opens on first use."""

    def __init__(
        self,
        settings: ApprovalSettings,
        store_path: Path,
        redactor: Redactor,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store_path = store_path
        self.redactor = redactor
        self.wall = wall
        self._store: SqliteApprovalStore | None = None

    @property
    def store(self) -> SqliteApprovalStore:
        """The approvals table (opened on first use)."""
        if self._store is None:
            self._store = SqliteApprovalStore(self.store_path)
        return self._store

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def preview(self, arguments: Any) -> str:
        """The arguments as shown to the human and stored: secret keys and values redacted."""
        text = self.redactor.serialize(arguments)
        spans = redaction_spans(scan_text(text))
        return redact(text, spans) if spans else text

    async def obtain(self, ctx: CallContext, gateway: HasSealer, reason: str) -> CallContext | JsonObject:
        """The context to continue with once approved, or an `input_required` result to return.

        Raises:
            PolicyDenied: the user declined, or no channel can ask and no approval exists yet.
            InvalidRequest: a retry's approval state belongs to another call.
        """
        arguments: Any = ctx.params.get("arguments") if ctx.method == "tools/call" else {"uri": ctx.name}
        ident = approval_id(str(ctx.principal), ctx.server, ctx.name, arguments)
        modern = ctx.era in MODERN_PROTOCOL_VERSIONS
        state = ctx.params.get("requestState")
        if modern and state is not None:
            sealed = gateway.sealer.open(state, principal=str(ctx.principal), item=ctx.name)
            opened: Any = sealed.state
            # Only an envelope sealed for the approval itself counts (an upstream's state is sealed for its server).
            if sealed.server == _SEALED_FOR + ctx.server and isinstance(opened, Mapping) and _STATE_KEY in opened:
                if cast(Mapping[str, Any], opened)[_STATE_KEY] != ident:
                    raise InvalidRequest("this approval was given for another call (different arguments)")
                answer = cast(Mapping[str, Any], ctx.params.get("inputResponses") or {}).get(APPROVAL_KEY)
                await self._decide(ctx, ident, arguments, reason, answer=answer)
                return _stripped(ctx)
        now = self.wall()
        earlier = await anyio.to_thread.run_sync(self.store.get, ident)
        if earlier is not None and earlier.valid(now) and earlier.status != "pending":
            if earlier.status == "denied":
                raise PolicyDenied(f"This call was denied by {earlier.decided_by or 'a human'} (approval {ident}).")
            note_decision("approved", f"{reason} Approved earlier by {earlier.decided_by} (approval {ident}).")
            return ctx
        preview = self.preview(arguments)
        question = approval_question(ctx.name, ctx.server, reason, preview)
        bridge = INPUT_BRIDGE.get()
        if not modern and ctx.era and bridge is not None and bridge.can(_ELICIT):
            answer: Any = None
            with anyio.move_on_after(self.settings.ask_timeout):
                answer = await bridge.ask(_ELICIT, question)
            if answer is not None:
                await self._decide(ctx, ident, arguments, reason, answer=answer)
                return ctx
        elif modern and _declares_form_elicitation(ctx.client_capabilities):
            sealed_state = gateway.sealer.seal(
                server=_SEALED_FOR + ctx.server, item=ctx.name, principal=str(ctx.principal), state={_STATE_KEY: ident}
            )
            note_decision("held", f"{reason} Asked the user (approval {ident}).")
            return {
                "resultType": "input_required",
                "inputRequests": {APPROVAL_KEY: {"method": _ELICIT, "params": question}},
                "requestState": sealed_state,
            }
        pending = self._pending(ctx, ident, preview, reason, now)
        await anyio.to_thread.run_sync(self.store.request, pending, now)
        raise PolicyDenied(
            f"{reason} The call is held for a human's approval: run `switchyard approve-call {ident}` "
            f"(or use a client that supports elicitation), then retry the same call.",
            {"approval": ident},
        )

    def _pending(self, ctx: CallContext, ident: str, preview: str, reason: str, now: float) -> CallApproval:
        return CallApproval(
            id=ident,
            principal=str(ctx.principal),
            server=ctx.server,
            tool=ctx.name,
            arguments=preview,
            reason=reason,
            created=now,
            expires=now + self.settings.ttl,
            status="pending",
        )

    async def _decide(
        self, ctx: CallContext, ident: str, arguments: Any, reason: str, *, answer: Any, by: str = "elicitation"
    ) -> None:
        """Persist a yes (so a retry within the ttl does not ask again); raise on a no (asked again next time)."""
        if not accepted(answer):
            raise PolicyDenied(f"The user declined this call ({by}, approval {ident}).")
        now = self.wall()
        pending = self._pending(ctx, ident, self.preview(arguments), reason, now)

        def store() -> None:
            current = self.store.request(pending, now)  # an unexpired record as it is, else this one
            if current.status == "denied":  # an operator's no (`approve-call --deny`) is not overturned by a yes
                raise PolicyDenied(f"This call was denied by {current.decided_by or 'a human'} (approval {ident}).")
            self.store.decide(ident, True, now=now, ttl=self.settings.ttl, by=by)

        await anyio.to_thread.run_sync(store)
        note_decision("approved", f"{reason} Approved by the user ({by}, approval {ident}).")
