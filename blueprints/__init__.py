"""One module per boundary; each module's blueprint is called `bp`."""


def all_blueprints() -> list:
    """Every blueprint the app registers (imported here, late, to keep imports acyclic)."""
    from blueprints import (
        app_home,
        demo,
        exchanges,
        health,
        return_events,
        settings,
        shop_cli,
        webhooks_ongoing,
        webhooks_shopify,
    )

    return [app_home.bp, demo.bp, settings.bp, exchanges.bp, shop_cli.bp, webhooks_shopify.bp,
            webhooks_ongoing.bp, return_events.bp, health.bp]
