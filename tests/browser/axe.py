"""axe-core for the accessibility tests: a pinned npm tarball, checked, cached, no npm.

`axe_script()` is the path of `axe.min.js` of axe-core `VERSION`: downloaded once from
the npm registry (`https://registry.npmjs.org/axe-core/-/axe-core-VERSION.tgz`, the
only host asked; proxies and CA bundles from the environment), its sha512 compared
with the pinned one before anything is unpacked, then kept under
`$HOMELAB_CACHE_DIR` (default `~/.cache/homelab-reconciler`). hack/test.sh calls
`python -m tests.browser.axe` first, so a fresh machine (CI's clean Debian root)
fetches it before the tests run, and a failed download says why.

`install_axe(context)` loads it into every page of a Playwright browser context (an
init script, which the page's strict CSP does not apply to, unlike
`add_script_tag`'s inline script); `run_axe(page)` runs `axe.run()` and returns the
violations of impact serious or critical, as short readable lines.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx

VERSION = "4.14.1"
URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
# The registry's `dist.integrity` of that version.
SHA512 = "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
MEMBER = "package/axe.min.js"
BAD_IMPACTS = ("serious", "critical")


def cache_dir() -> Path:
    base = os.environ.get("HOMELAB_CACHE_DIR") or str(Path.home() / ".cache" / "homelab-reconciler")
    return Path(base) / f"axe-core-{VERSION}"


def _download() -> bytes:
    try:
        response = httpx.get(URL, timeout=60, follow_redirects=True, trust_env=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise RuntimeError(f"axe-core: cannot download {URL}: {exc}") from exc
    body = response.content
    digest = base64.b64encode(hashlib.sha512(body).digest()).decode()
    if digest != SHA512:
        raise RuntimeError(f"axe-core: {URL} has sha512-{digest}, expected sha512-{SHA512}")
    return body


def axe_script() -> Path:
    """The checked `axe.min.js`, downloaded on first use."""
    folder = cache_dir()
    target = folder / "axe.min.js"
    if target.is_file():
        return target
    body = _download()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise RuntimeError(f"axe-core: {MEMBER} missing from {URL}")
        script = member.read()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".axe.min.js.{os.getpid()}"
    partial.write_bytes(script)
    partial.replace(target)  # whole or not at all
    return target


def install_axe(context: Any) -> None:
    """Load axe-core into every page of a Playwright browser context.

    An init script (`add_init_script`): Playwright runs it before the page's own
    scripts, outside the page's Content-Security-Policy, which refuses inline
    scripts and so `add_script_tag` (the CSP stays as strict as in production).
    """
    context.add_init_script(path=str(axe_script()))


def run_axe(page: Any) -> list[str]:
    """Serious and critical violations on `page` now, one line each (empty: none)."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        raise AssertionError("axe-core is not loaded: call install_axe(context) first")
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map(n => ({target: n.target.join(" "),
                summary: (n.failureSummary || "").split("\\n").slice(0, 3).join(" ")}))}));
        }"""
    )
    lines = []
    for violation in result:
        if violation["impact"] not in BAD_IMPACTS:
            continue
        for node in violation["nodes"][:5]:
            lines.append(
                f"{violation['impact']} {violation['id']} ({violation['help']}): "
                f"{node['target']}: {node['summary']}"
            )
    return lines


if __name__ == "__main__":
    print(f"axe-core {VERSION}: {axe_script()}", file=sys.stderr)
