"""Detection hands its read of the return to the create step applied next in its job (one
Shopify call less per exchange); nothing else ever gets a read it did not make."""
from __future__ import annotations

import pytest

from clients import shopify_admin

DOMAIN, GID = "hand.myshopify.com", "gid://shopify/Return/1"


@pytest.fixture
def reads(monkeypatch):
    made: list[str] = []
    run = {"now": ("job-1", 1.0)}

    def read(domain, gid):
        made.append(gid)
        return {"id": gid, "read": len(made)}

    monkeypatch.setattr(shopify_admin, "_read_return", read)
    monkeypatch.setattr(shopify_admin, "job_run", lambda: run["now"])
    shopify_admin._HANDED.read = None
    yield made, run
    shopify_admin._HANDED.read = None


def test_the_next_read_of_the_same_return_in_the_same_run_gets_detections_read_once(reads):
    made, _ = reads
    first = shopify_admin.read_return(DOMAIN, GID, hand_over=True)
    assert shopify_admin.read_return(DOMAIN, GID) is first
    assert shopify_admin.read_return(DOMAIN, GID)["read"] == 2
    assert made == [GID, GID]


def test_another_run_another_return_or_no_job_reads_again(reads):
    made, run = reads
    shopify_admin.read_return(DOMAIN, GID, hand_over=True)
    run["now"] = ("job-1", 2.0)  # the same job retried: a new run
    assert shopify_admin.read_return(DOMAIN, GID)["read"] == 2
    shopify_admin.read_return(DOMAIN, GID, hand_over=True)
    assert shopify_admin.read_return(DOMAIN, "gid://shopify/Return/2")["read"] == 4
    assert shopify_admin.read_return(DOMAIN, GID)["read"] == 5  # the other read used it up
    run["now"] = None  # outside a job nothing is handed over
    shopify_admin.read_return(DOMAIN, GID, hand_over=True)
    assert shopify_admin.read_return(DOMAIN, GID)["read"] == 7
    assert len(made) == 7
