"""axe-core for the accessibility tests: a pinned npm tarball, checked, cached, no npm.

`axe_script()` is the path of `axe.min.js` of axe-core `VERSION`: downloaded once from
the npm registry (`https://registry.npmjs.org/axe-core/-/axe-core-VERSION.tgz`, the
only host asked; proxies and CA bundles from the environment), its sha512 compared
with the pinned one before anything is unpacked, then kept under
`$HOMELAB_CACHE_DIR` (default `~/.cache/homelab-reconciler`). hack/test.sh calls
`python -m tests.browser.axe` first, so a fresh machine (CI's clean Debian root)
fetches it before the tests run, and a failed download says why.

`run_axe(page)` injects it into a Playwright page (`add_script_tag(path=...)`, which
the CSP allows: Playwright adds it outside the page's policy) and returns the
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


def run_axe(page: Any) -> list[str]:
    """Serious and critical violations on `page` now, one line each (empty: none)."""
    page.add_script_tag(path=str(axe_script()))
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
