"""The CSP blocks inline script in a real browser, even if markup were injected into a page."""

from __future__ import annotations

from tests.e2e.conftest import screenshot

INJECTED = (
    "<script>window.__inline_ran = true</script>"
    '<img src="data:," onerror="window.__handler_ran = true">'
    '<a id="js-link" href="javascript:window.__link_ran = true">x</a>'
    '<div id="styled" style="color: rgb(255, 0, 0)">styled</div>'
)


def test_injected_inline_script_does_not_run(live_server, page):
    violations = []
    page.on("console", lambda message: violations.append(message.text))

    def inject(route):
        response = route.fetch()
        body = response.text().replace("</main>", INJECTED + "</main>", 1)
        route.fulfill(response=response, body=body)

    page.route(live_server("/"), inject)
    response = page.goto(live_server("/"))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.click("#js-link")
    page.wait_for_timeout(300)
    ran = page.evaluate(
        "[window.__inline_ran, window.__handler_ran, window.__link_ran].map(Boolean)"
    )
    assert ran == [False, False, False]
    colour = page.eval_on_selector("#styled", "e => getComputedStyle(e).color")
    assert colour != "rgb(255, 0, 0)"  # inline style attributes are blocked too
    assert page.evaluate("typeof window.htmx") == "object"  # our own script still runs
    assert any("Content Security Policy" in text for text in violations), violations
    screenshot(page, "security-csp")
