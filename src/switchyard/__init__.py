"""Switchyard: one MCP endpoint in front of any number of MCP servers.

Public API only; everything else is internal and may change.
"""

from switchyard.config import GatewayConfig, load_config, parse_config
from switchyard.errors import ConfigError, SwitchyardError

__all__ = ["ConfigError", "GatewayConfig", "SwitchyardError", "load_config", "parse_config"]
__version__ = "0.1.0"
