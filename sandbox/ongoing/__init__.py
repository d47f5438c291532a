"""Sandbox Ongoing: the Goods Owner REST API v1 and its order-status webhook.

`server` runs it; `api` holds the routes, `store` the accounts and rules, `fields` the field checks.
"""
from sandbox.ongoing.server import SandboxOngoing
from sandbox.ongoing.store import THREE_PL_RETURNED, Account, webhook_payload

__all__ = ["THREE_PL_RETURNED", "Account", "SandboxOngoing", "webhook_payload"]
