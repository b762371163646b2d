"""An automated accessibility check of a page in the browser: axe-core (Deque's rules for
WCAG 2.x A and AA), from tests/e2e/a11y (`make mcp-client` installs it with `npm ci`).

The provider's pages forbid scripts (CSP), so the context that runs the check is opened with
`bypass_csp`; that context is used for nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).resolve().parents[1] / "e2e/a11y/node_modules/axe-core/axe.min.js"
# What fails a page: the impact levels axe calls serious and critical.
FAILING_IMPACTS = frozenset({"serious", "critical"})


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations of the page as it is now."""
    assert AXE.is_file(), f"{AXE} is missing: run `make mcp-client` (npm ci of tests/e2e/a11y)"
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
        })"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v.get("impact") in FAILING_IMPACTS
    ]
