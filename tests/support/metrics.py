"""Reading one value off a Prometheus /metrics page."""

from __future__ import annotations

import re

import httpx


async def scrape(url: str, name: str) -> float:
    """The value of the sample `name` (no labels) at `url`; fails the test if there is none."""
    async with httpx.AsyncClient(timeout=3) as client:
        return _sample((await client.get(url)).text, name, url)


def scrape_now(url: str, name: str) -> float:
    """`scrape`, for a test's blocking code (a thread, a browser test)."""
    return _sample(httpx.get(url, timeout=3).text, name, url)


def _sample(text: str, name: str, url: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"{name} not in {url}"
    return float(found[1])
