"""The built-in rules, one small class each, grouped by family; `default_rules()` returns them in id order.

Owns: the list of built-in rules. Does not own: rule plumbing (`rules.base`) or the engine.
Families: `instructions` and `preconditions` (SY1xx), `crossserver` (SY2xx), `exfil` (SY3xx), `obfuscation` (SY4xx),
`params` (SY5xx), `purpose` (SY6xx), `outputs` (SY7xx). Each rule is documented in docs/security-rules.md.
"""

from __future__ import annotations

from switchyard.security.engine import Rule
from switchyard.security.rules.crossserver import NameCollisionRule, ToolShadowingRule
from switchyard.security.rules.exfil import ExfiltrationChannelRule, SecretValueRule, SensitiveFileRule
from switchyard.security.rules.instructions import InstructionOverrideRule, PseudoTagRule, SecrecyRule
from switchyard.security.rules.obfuscation import (
    AbnormalTextRule,
    ConfusableNameRule,
    EncodedPayloadRule,
    InvisibleUnicodeRule,
)
from switchyard.security.rules.outputs import EmbeddedDirectiveRule, ToolCallInstructionRule
from switchyard.security.rules.params import OutOfScopeParameterRule, SecretParameterRule
from switchyard.security.rules.preconditions import HiddenPreconditionRule
from switchyard.security.rules.purpose import MaliciousPurposeRule, PreferenceManipulationRule

__all__ = [
    "AbnormalTextRule",
    "ConfusableNameRule",
    "EmbeddedDirectiveRule",
    "EncodedPayloadRule",
    "ExfiltrationChannelRule",
    "HiddenPreconditionRule",
    "InstructionOverrideRule",
    "InvisibleUnicodeRule",
    "MaliciousPurposeRule",
    "NameCollisionRule",
    "OutOfScopeParameterRule",
    "PreferenceManipulationRule",
    "PseudoTagRule",
    "SecrecyRule",
    "SecretParameterRule",
    "SecretValueRule",
    "SensitiveFileRule",
    "ToolCallInstructionRule",
    "ToolShadowingRule",
    "default_rules",
]


def default_rules() -> list[Rule]:
    """A fresh instance of every built-in rule, sorted by id."""
    rules: list[Rule] = [
        PseudoTagRule(),
        InstructionOverrideRule(),
        SecrecyRule(),
        HiddenPreconditionRule(),
        ToolShadowingRule(),
        NameCollisionRule(),
        SensitiveFileRule(),
        ExfiltrationChannelRule(),
        SecretValueRule(),
        InvisibleUnicodeRule(),
        ConfusableNameRule(),
        EncodedPayloadRule(),
        AbnormalTextRule(),
        OutOfScopeParameterRule(),
        SecretParameterRule(),
        MaliciousPurposeRule(),
        PreferenceManipulationRule(),
        EmbeddedDirectiveRule(),
        ToolCallInstructionRule(),
    ]
    return sorted(rules, key=lambda r: r.id)
