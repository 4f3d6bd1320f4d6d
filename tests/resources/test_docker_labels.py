"""Container labels are Docker labels: a reverse proxy's rules validate, broken ones do not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler.resources.kinds import ContainerSpec

TRAEFIK = {
    "traefik.enable": "true",
    "traefik.http.routers.whoami.rule": "Host(`whoami.localhost`) && PathPrefix(`/api`)",
    "traefik.http.middlewares.nextcloud-secure-headers.headers.stsIncludeSubdomains": "true",
}


def test_traefik_labels_validate_and_sort() -> None:
    spec = ContainerSpec.model_validate({"image": "local/busybox:1", "labels": TRAEFIK})
    assert spec.labels == dict(sorted(TRAEFIK.items()))


def test_unquoted_scalars_are_the_text_the_engine_stores() -> None:
    spec = ContainerSpec.model_validate(
        {"image": "local/busybox:1", "labels": {"a.enable": True, "a.port": 8080}}
    )
    assert spec.labels == {"a.enable": "true", "a.port": "8080"}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"has space": "x"}, "1-255 printable characters without spaces"),
        ({"": "x"}, "1-255 printable characters without spaces"),
        ({"k" * 256: "x"}, "1-255 printable characters without spaces"),
        ({"ok": "two\nlines"}, "one line of at most 4096 characters"),
        ({"ok": "x" * 4097}, "one line of at most 4096 characters"),
    ],
)
def test_bad_labels_are_refused_with_the_reason(labels: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ContainerSpec.model_validate({"image": "local/busybox:1", "labels": labels})
    assert message in str(caught.value)
