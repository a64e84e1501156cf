"""Reading one value off a Prometheus /metrics page."""

from __future__ import annotations

import re

import httpx


async def scrape(url: str, name: str) -> float:
    """The value of the sample `name` (no labels) at `url`; fails the test if there is none."""
    async with httpx.AsyncClient(timeout=3) as client:
        text = (await client.get(url)).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"{name} not in {url}"
    return float(found[1])
