"""What the dashboard shows beside each chart: the KPI definitions (README, "KPI definitions"), and how
numbers are written for people (money in the reporting currency, percentages, counts)."""

from __future__ import annotations

import math

# Symbols a reader recognises; any other currency is written with its ISO code.
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CHF": "CHF ", "CAD": "CA$", "AUD": "A$"}

DEFINITIONS: dict[str, str] = {
    "sale": "A **sale** is a valid order item whose order status is not `cancelled`. An order counts once.",
    "gross_revenue": "**Gross revenue** = sum of the sales' revenue, each converted to the reporting currency "
                     "at the fx_rates rate of the order's currency and day (a sale without a rate adds no amount).",
    "net_revenue": "**Net revenue** = gross revenue - returned revenue (the part whose item status is `returned`).",
    "average_order_value": "**Average order value** = gross revenue / orders (0 without orders).",
    "orders": "**Orders** = distinct orders with at least one sale; **items** = sales.",
    "return_rate": "**Return rate** = orders with a returned item / orders (0 without orders).",
    "margin": "**Margin** = net revenue - cost of the items not returned, at the product version's cost valid "
              "when the order was placed (point in time, from the SCD2 history).",
    "period": "**Change** compares the chosen days with as many days just before them.",
    "days": "**Days** are local dates in the shop's time zone: an order's `created_at`, a session's events "
            "(a session is cut at midnight).",
    "category_orders": "Per category an order counts once in each category it bought from, so orders of "
                       "several categories add up to more than the shop's orders.",
    "stock": "**Stock health** per snapshot, warehouse and product: negative stock; a **drop** or a **spike** "
             "against the median stock of the days before; **days of cover** = stock / average daily units sold.",
    "funnel": "**Funnel per day**: sessions with a page_view, with an add_to_cart, with a purchase, each counted "
              "on its own. **view → cart** = cart / view, **cart → purchase** = purchase / cart, "
              "**view → purchase** = purchase / view; capped at 100 %, 0 with a zero denominator.",
    "drop_off": "**Drop-off** of a step = 1 - its conversion rate: the share of sessions that did not go on.",
    "ltv": "**LTV** = net revenue in the reporting currency over all the customer's sales.",
    "segments": "**VIP** = top 5 % of buyers by LTV (vip_share); **window shopper** = no sale ever and at least "
                "3 sessions with a page_view in the last 90 days (window_shopper_sessions, window_shopper_days).",
    "lifecycle": "**Lifecycle stage** by the recency of the last sale: new (first sale within new_days), active "
                 "(last within active_days), at_risk (within at_risk_days), else churned; prospect: no sale.",
    "reconciled": "Every file is reconciled: rows read = rows loaded + rows quarantined + exact duplicates dropped.",
    "quarantine": "A quarantined row keeps its raw values as they came and **every** rule it failed.",
    "checks": "Checks are SQL assertions run on the tables a batch wrote; a failed `error` check rolls the batch "
              "back, so gold is never published from it.",
    "freshness": "The monitor's findings: a feed late against its freshness SLA, a day's volume far from the "
                 "usual, a rising quarantine rate, failed or stuck batches.",
}


def money(value: float | None, currency: str) -> str:
    """An amount in the reporting currency: `$1,234.56`, `-€12.00`; an unknown amount is `-`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    symbol = _SYMBOLS.get(currency.upper(), currency.upper() + " ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def percent(value: float | None) -> str:
    """A ratio as a percentage with one decimal: 0.1234 -> `12.3 %`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * 100:.1f} %"


def count(value: float | int | None) -> str:
    """A whole number with thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{round(value):,}"


def ratio(numerator: float, denominator: float, *, cap: bool = False) -> float:
    """A KPI ratio: 0 with a zero denominator, capped at 1 for conversion rates."""
    if not denominator:
        return 0.0
    value = numerator / denominator
    return min(value, 1.0) if cap else value


def change(current: float, previous: float) -> str | None:
    """Period-over-period change as a signed percentage, or None without a previous period to compare with."""
    if not previous:
        return None
    return f"{(current - previous) / abs(previous) * 100:+.1f} %"
