"""bench.lifecycle's judgement of calls beyond the minimum (bench/lifecycle_calls.py explain):
what a re-run after a short Shopify bucket, a further page or the reconciliation may add, and
nothing more."""
from __future__ import annotations

from collections import Counter

from bench.lifecycle_calls import Extra, explain

PAGED = "GET /orders?articleNumbers&maxOrdersToGet&orderCreatedTimeFrom&orderIdFrom&orderStatusTo"


def test_a_step_rerun_explains_at_most_one_of_each_of_its_calls_per_rerun():
    reruns = Counter(create=13, fulfil=24)
    tags = Extra("Shopify", "approve->parked", "TagsAdd", 13, 200)
    assert explain(tags, reruns, 0)
    assert explain(Extra("Shopify", "approve->parked", "TagsAdd", 14, 200), reruns, 0) is None
    # ReturnForExchange is read once in detect + create: up to one per re-run
    assert explain(Extra("Shopify", "approve->parked", "ReturnForExchange", 13, 200), reruns, 0)
    assert explain(Extra("Shopify", "approve->parked", "ReturnForExchange", 14, 200), reruns,
                   0) is None
    sent = Extra("Ongoing", "sent->completed", "GET /orders/{id}", 24, 200)
    assert explain(sent, reruns, 0)
    assert explain(sent, Counter(create=24), 0) is None  # other steps' re-runs do not count
    assert explain(Extra("Shopify", "sent->completed", "FulfillmentCreate", 1, 200),
                   Counter(), 0) is None


def test_further_pages_and_the_reconciliations_reads_are_not_extra():
    assert explain(Extra("Ongoing", "close->released", PAGED, 103, 200), Counter(), 0)
    recon = Extra("Ongoing", "sent->completed", "GET /orders?maxOrdersToGet&orderNumbers", 1, 200)
    assert explain(recon, Counter(), 8)
    assert explain(recon, Counter(), 0) is None
    assert explain(Extra("Ongoing", "close->released", "PATCH /orders/{id}/orderStatus", 1,
                         200), Counter(), 8) is None


def test_fewer_calls_than_the_minimum_are_never_explained():
    assert explain(Extra("Ongoing", "sent->completed", "GET /orders/{id}", -3, 200),
                   Counter(fulfil=5), 8) is None
