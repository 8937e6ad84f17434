"""The Content-Security-Policy holds on every page a user reaches: signed in as each
role, a real browser walks that role's pages (every link of the menu and the links
on those pages, one page per kind of object) and the browser reports no CSP
violation, no console error and no script error. The policy itself is checked to
refuse inline script and inline event handlers, so the walk can find them."""
import re
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ARTIFACTS, USERS, login

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOT_WALKED = re.compile(r"^/(logout|login|django-admin|static)/|/delete/|/sync/|/test/|/cancel/|/action/|^/api/v1/schema/")
PAGES_PER_ROLE = 40
# A handler attribute is only refused (and reported) when its event fires, so the markup is read too,
# <template> contents included: no on* attribute, no <script> without src.
INLINE_CODE = """() => {
  const all = [...document.querySelectorAll('*')];
  for (const t of document.querySelectorAll('template')) all.push(...t.content.querySelectorAll('*'));
  return all.flatMap(el => [...el.attributes].filter(a => a.name.startsWith('on')).map(a => `<${el.localName} ${a.name}>`)
    .concat(el.localName === 'script' && !el.src ? ['inline <script>'] : []));
}"""

LISTEN = """
window.__slipwayViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const text = `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`;
  window.__slipwayViolations.push(text);
  window.__slipwayViolation(text);
}, true);
"""


class Watch:
    """What the browser reports on one role's pages."""

    def __init__(self, page):
        self.violations, self.console, self.errors = [], [], []
        page.context.expose_function("__slipwayViolation", lambda text: self.violations.append(f"{page.url}: {text}"))
        page.context.add_init_script(LISTEN)
        page.on("console", lambda m: self.console.append(f"{page.url}: {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))

    def problems(self):
        return self.violations + self.console + self.errors


def kind_of(path: str) -> str:
    """/ops/runs/12/ and /ops/runs/13/ are one kind of page: walk one of them."""
    return re.sub(r"/\d+(?=/|$)", "/N", path)


def walk(page, base_url) -> list[str]:
    """Breadth-first over the same-site links of the signed-in user's pages, from the landing page."""
    seen_kinds, walked, queue = set(), [], [urlsplit(page.url).path]
    while queue and len(walked) < PAGES_PER_ROLE:
        path = queue.pop(0)
        if kind_of(path) in seen_kinds or NOT_WALKED.search(path):
            continue
        seen_kinds.add(kind_of(path))
        response = page.goto(base_url + path)
        assert response.status == 200, f"{path}: HTTP {response.status}"
        assert "script-src 'self'" in response.headers.get("content-security-policy", ""), f"{path}: no CSP header"
        page.wait_for_load_state("load")
        assert page.evaluate(INLINE_CODE) == [], f"{path}: inline code in the page"
        walked.append(path)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        for href in hrefs:
            url = urlsplit(href)
            if url.netloc == urlsplit(base_url).netloc and url.path not in queue:
                queue.append(url.path)
    return walked


def seed(site):
    """Something on every page: an inventory, a finished run and a schedule."""
    site.manage(["shell", "-c", "from ops.inventory.sync import sync_all; sync_all('e2e')"])
    site.wait_final(site.start_run("checkpoint-cleanup", cloud="Gold", older_than_days="30", dry_run="true"), timeout=120)


def test_each_roles_pages_have_no_csp_violation(site, browser):
    seed(site)
    for username, role in USERS.items():
        page = login(browser, site.base_url, username)
        watch = Watch(page)
        walked = walk(page, site.base_url)
        if role == "tenant":   # My VMs (home sends tenants there), their activity, their profile, the API docs
            assert "/vms/" in walked and "/activity/" in walked, walked
        else:
            assert len(walked) >= 5, f"{role} reached only {walked}"
        assert any(kind_of(p) == "/ops/runs/N/" for p in walked) or role == "tenant", walked  # the live page ran its script
        page.screenshot(path=str(ARTIFACTS / f"csp-{role}-last.png"), full_page=True)
        page.evaluate("() => 'a round trip: the reports before it have reached the watch'")
        assert watch.problems() == [], f"{role} walked {walked}"
        page.context.close()


def test_a_confirmation_asks_and_cancel_sends_nothing(site, browser):
    """data-confirm (static/js/slipway.js) replaces the inline onsubmit: the question is asked; Cancel keeps the connection."""
    page = login(browser, site.base_url, "adam")
    watch = Watch(page)
    page.goto(f"{site.base_url}/ops/connections/")
    page.click("text=vmm01")
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("button:has-text('Delete connection')")
    assert asked == ["Delete the connection vmm01?"]
    page.goto(f"{site.base_url}/ops/connections/")
    assert page.locator("text=vmm01").count() >= 1
    assert watch.problems() == []


def test_the_policy_refuses_inline_script_and_handlers(site, browser):
    """The watch sees a violation when there is one: an injected inline handler and script are refused, not run."""
    page = login(browser, site.base_url, "tina")
    watch = Watch(page)
    page.goto(f"{site.base_url}/")
    page.evaluate("""() => {
        document.body.insertAdjacentHTML('beforeend', '<img src="data:," onload="window.__ran = 1">');
        const s = document.createElement('script'); s.textContent = 'window.__ran = 2'; document.body.append(s);
    }""")
    page.wait_for_function("() => window.__slipwayViolations.length >= 2")
    assert page.evaluate("window.__ran === undefined")
    page.evaluate("() => 'a round trip: the reports before it have reached the watch'")
    assert [v.split(": ")[1].split(" ")[0] for v in watch.violations] == ["script-src-attr", "script-src-elem"], watch.problems()
