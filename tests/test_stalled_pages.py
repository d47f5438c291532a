"""Stalled exchanges on the pages: App Home lists them beside the ones that need attention, the
Exchanges list filters them, and an exchange page shows its open alert. The alerts are raised
by the real scan (jobs/alerts.py) on exchanges written straight into a stalled state."""
from __future__ import annotations

import re
from html import unescape

from jobs.alerts import scan_shop
from models import db
from models.exchange import Exchange
from models.types import utcnow
from tests.alert_support import stalled_exchange
from tests.conftest import OTHER_SHOP, SHOP
from tests.test_home_overview import setup_done


def ids(html: str, testid: str) -> list[int]:
    return [int(i) for i in re.findall(rf'data-testid="{testid}" data-id="(\d+)"', html)]


def stalled_rows(html: str) -> list[str]:
    """Each stalled row of the home page as its text."""
    rows = re.findall(r'data-testid="stalled-row".*?</li>', html, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row.split(">", 1)[1])).split())
            for row in rows]


def stalled_world(make_shop) -> dict[str, int]:
    """One shop with exchanges stalled three ways, one fresh, one needing attention, and
    another shop's stalled exchange; the scan has run for both shops."""
    make_shop(SHOP, **setup_done())
    make_shop(OTHER_SHOP, **setup_done())
    made = {"parked": stalled_exchange(SHOP, "parked", days=20, number=1001),
            "released": stalled_exchange(SHOP, "released", days=3, number=1002),
            "fresh": stalled_exchange(SHOP, "released", days=1, number=1003),
            "fulfilled": stalled_exchange(SHOP, "fulfilled", days=2, number=1004),
            "attention": stalled_exchange(SHOP, "needs_attention", days=0, number=1005,
                                          attention_reason="Out of stock: TEE-L has 0"),
            "other": stalled_exchange(OTHER_SHOP, "parked", days=30, number=1006)}
    scan_shop(SHOP)
    scan_shop(OTHER_SHOP)
    return made


def test_home_lists_stalled_exchanges_beside_needs_attention(make_shop, htmx):
    made = stalled_world(make_shop)
    html = htmx("GET", "/", boosted=True).get_data(as_text=True)
    assert ids(html, "attention-row") == [made["attention"]]
    # Longest stalled first; the fresh one and the other shop's are not listed.
    assert ids(html, "stalled-row") == [made["parked"], made["released"], made["fulfilled"]]
    parked, released, fulfilled = stalled_rows(html)
    assert parked.startswith("#1001 Return not moving since") and "(20 d)" in parked
    assert released.startswith("#1002 Released, not sent since")
    assert fulfilled.startswith("#1004 Difference not collected since")
    for key in ("parked", "released", "fulfilled"):
        assert f'href="/exchanges/{made[key]}"' in html
    assert html.index('data-testid="attention"') < html.index('data-testid="stalled"')


def test_home_says_when_nothing_is_stalled(make_shop, htmx):
    make_shop(SHOP, **setup_done())
    stalled_exchange(SHOP, "parked", days=2)
    scan_shop(SHOP)
    html = htmx("GET", "/", boosted=True).get_data(as_text=True)
    assert ids(html, "stalled-row") == [] and 'data-testid="stalled-empty"' in html
    assert 'href="/settings#notifications"' in html


def test_exchanges_list_filters_the_stalled(make_shop, htmx):
    made = stalled_world(make_shop)
    html = htmx("GET", "/exchanges", boosted=True).get_data(as_text=True)
    assert re.search(r'data-testid="filter-stalled"\s*>Stalled \(3\)</a>', html)
    assert len(ids(html, "exchange-row")) == 5  # the unfiltered list keeps them all

    listed = htmx("GET", "/exchanges?stalled=1").get_data(as_text=True)
    assert listed.lstrip().startswith('<section class="card" id="exchange-list"')  # partial
    assert ids(listed, "exchange-row") == [made["parked"], made["released"], made["fulfilled"]]
    assert ">Stalled</h2>" in listed
    assert re.search(r'aria-current="page"\s*>Stalled \(3\)</a>', listed)
    notes = [" ".join(unescape(re.sub(r"<[^>]+>", "", n)).split())
             for n in re.findall(r'data-testid="stalled-note">(.*?)</span>', listed, re.S)]
    assert [n.split(" since ")[0] for n in notes] == ["Return not moving", "Released, not sent",
                                                      "Difference not collected"]
    assert notes[1].endswith("(3 d)")


def test_the_stalled_filter_empties_when_the_exchange_moves_on(make_shop, htmx):
    make_shop(SHOP, **setup_done())
    exchange_id = stalled_exchange(SHOP, "released", days=5)
    scan_shop(SHOP)
    assert ids(htmx("GET", "/exchanges?stalled=1").get_data(as_text=True),
               "exchange-row") == [exchange_id]
    with db.session() as s:
        row = s.get(Exchange, exchange_id)
        row.state, row.sent_at = "sent", utcnow()
    scan_shop(SHOP)  # the alert resolves
    html = htmx("GET", "/exchanges?stalled=1").get_data(as_text=True)
    assert ids(html, "exchange-row") == [] and "No exchange is stalled right now." in html


def test_exchange_page_shows_its_open_alert(make_shop, htmx):
    made = stalled_world(make_shop)
    html = htmx("GET", f"/exchanges/{made['released']}", boosted=True).get_data(as_text=True)
    banner = re.search(r'data-testid="open-alert"[^>]*>(.*?)</div>', html, re.S).group(1)
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", banner)).split())
    assert text.startswith("Alert: Released, not sent since")
    assert "Released to the warehouse on" in text and "not Sent yet." in text
    attention = htmx("GET", f"/exchanges/{made['attention']}").get_data(as_text=True)
    assert 'data-condition="needs_attention"' in attention
    fresh = htmx("GET", f"/exchanges/{made['fresh']}").get_data(as_text=True)
    assert 'data-testid="open-alert"' not in fresh
