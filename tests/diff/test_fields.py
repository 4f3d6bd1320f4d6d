"""The readable field changes of a plan: env by name, keyed lists, no default nulls, model order.

These call the real renderer (`reconciler.diff.render_change`, `field_changes`) on
comparable specs built by the real models and normalization, the way the planner's
changes carry them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from reconciler.diff import change_to_json, diff_resource, render_change
from reconciler.diff.fields import KEYED_LISTS, field_changes, model_shape, spec_shape, tidy_spec
from reconciler.resources.kinds import KINDS, Container, EnvVar
from reconciler.resources.meta import StrictModel

SECRET_FP = "sha256:" + "ab" * 32
OTHER_FP = "sha256:" + "cd" * 32


def spec(**fields: Any) -> dict[str, Any]:
    """A Container's comparable spec as the model fills it (defaults, sorted lists)."""
    doc = {"metadata": {"name": "web"}, "spec": {"image": "local/busybox:1", **fields}}
    out = Container.model_validate(doc).model_dump(mode="json")["spec"]
    out.pop("policy")
    out.pop("dependsOn")
    if not out.get("networks"):
        out.pop("networks", None)
    return dict(out)


def lines(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    change = diff_resource("Container", "web", new, old, in_place=Container.IN_PLACE)
    assert change is not None
    return [line.strip() for line in render_change(change).splitlines()[2:]]


def test_one_env_variable_shows_by_name_never_by_index() -> None:
    old = spec(env={"GREETING": "hello", "MODE": "prod"})
    new = spec(env={"GREETING": "bye", "MODE": "prod"})
    assert lines(old, new) == ['~ env.GREETING: "hello" -> "bye"  # forces replacement']


def test_added_and_removed_variables_are_plus_and_minus_lines() -> None:
    old = spec(env={"KEEP": "1", "OLD": "x"})
    new = spec(env={"KEEP": "1", "NEW": "y"})
    assert lines(old, new) == [
        '+ env.NEW: "y"  # forces replacement',
        '- env.OLD: "x"  # forces replacement',
    ]


def test_secret_backed_env_shows_the_secret_name_never_the_fingerprint() -> None:
    old = spec(env=[{"name": "TOKEN", "valueFrom": {"secret": "api"}}])
    new = spec(env=[{"name": "TOKEN", "valueFrom": {"secret": "api"}}])
    old["env"][0]["valueFrom"]["sha256"] = SECRET_FP
    new["env"][0]["valueFrom"]["sha256"] = OTHER_FP
    shown = lines(old, new)
    assert shown == [
        "~ env.TOKEN: (secret api) -> (secret api)  # secret value changed; forces replacement"
    ]
    change = diff_resource("Container", "web", new, old)
    assert change is not None
    as_json = str(change_to_json(change)["fields"])
    assert "abab" not in "".join(shown) and "cdcd" not in as_json


def test_keyed_lists_match_items_on_their_key() -> None:
    old = spec(
        ports=[{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "protocol": "udp"}],
        volumes=[{"source": "/srv/a", "target": "/data"}],
    )
    new = spec(
        ports=[{"containerPort": 80, "hostPort": 8081}, {"containerPort": 53, "protocol": "tcp"}],
        volumes=[{"source": "/srv/b", "target": "/data", "readOnly": True}],
    )
    assert [line.split("  #")[0] for line in lines(old, new)] == [
        "+ ports[53/tcp]",
        "~ ports[80/tcp].hostPort: 8080 -> 8081",
        "- ports[53/udp]",
        '~ volumes[/data].source: "/srv/a" -> "/srv/b"',
        "~ volumes[/data].readOnly: false -> true",
    ]


def test_a_list_whose_items_repeat_a_key_is_one_value() -> None:
    fields = field_changes(
        "Container",
        {"ports": [{"containerPort": 80}, {"containerPort": 80}]},
        {"ports": [{"containerPort": 80}]},
    )
    assert [(f.path, f.op) for f in fields] == [("ports", "change")]


def test_the_keyed_list_table_names_item_fields_the_models_have() -> None:
    # Every table entry that a model uses points at fields its item model declares.
    for kind in KINDS:
        shape = spec_shape(kind)
        for field, key in KEYED_LISTS.items():
            if field in shape.order and shape.child(field).order:
                assert set(key) <= set(shape.child(field).order), (kind, field, key)


def test_unset_or_default_on_both_sides_is_not_shown() -> None:
    # An observed spec from an older collector: nulls and missing fields where the
    # model now fills empty lists and defaults. Only the real change shows.
    new = spec(image="local/busybox:2")
    old = {k: (None if v == [] or v == {} else v) for k, v in spec().items()}
    del old["privileged"]
    old["healthcheck"] = None
    shown = field_changes("Container", old, new)
    assert [(f.path, f.old, f.new) for f in shown] == [
        ("image", "local/busybox:1", "local/busybox:2")
    ]


def test_a_change_of_defaults_only_says_so() -> None:
    old = dict(spec(), capAdd=None)
    shown = lines(old, spec())
    assert shown == ["# only unset or default values differ"]


def test_a_create_lists_only_what_is_set() -> None:
    shown = lines(None, spec(env={"GREETING": "hello"}, ports=[{"containerPort": 80}]))
    assert shown == [
        '+ node: "local"',
        '+ image: "local/busybox:1"',
        '+ imagePullPolicy: "IfNotPresent"',
        '+ env.GREETING: "hello"',
        "+ ports[80/tcp]",
        '+ restartPolicy: "unless-stopped"',
        '+ networkMode: "bridge"',
        '+ state: "running"',
    ]
    assert not any("null" in line or "[]" in line or "false" in line for line in shown)


def test_fields_follow_the_models_declared_order_nested_too() -> None:
    model_order = list(spec_shape("Container").order)
    hc = {"test": ["CMD", "true"], "interval": 5, "retries": 2}
    old = spec(image="local/busybox:1", user="1000", healthcheck=hc)
    new = spec(
        image="local/busybox:2",
        user="1001",
        env={"A": "1"},
        capAdd=["NET_ADMIN"],
        healthcheck={**hc, "interval": 9, "retries": 4},
    )
    # Reversed key order on input: the output must not depend on it.
    shown = field_changes("Container", dict(reversed(old.items())), dict(reversed(new.items())))
    tops = [f.top for f in shown]
    assert tops == sorted(tops, key=model_order.index)
    hc_order = list(spec_shape("Container").child("healthcheck").order)
    nested = [f.path.split(".")[1] for f in shown if f.top == "healthcheck"]
    assert nested == ["interval", "retries"] == sorted(nested, key=hc_order.index)


def test_keys_the_model_does_not_declare_follow_the_declared_ones() -> None:
    shown = field_changes(
        "File",
        {"node": "local", "path": "/a", "mode": "0644", "sha256": OTHER_FP},
        {"node": "local", "path": "/b", "mode": "0600", "sha256": SECRET_FP},
    )
    assert [f.path for f in shown] == ["path", "mode", "sha256"]


def test_ignored_fields_stay_hidden_in_the_rendering() -> None:
    old = spec(image="local/busybox:1", env={"A": "1"})
    new = spec(image="local/busybox:2", env={"A": "2"})
    change = diff_resource("Container", "web", new, old, ignore=["/env"])
    assert change is not None
    assert [line.strip() for line in render_change(change).splitlines()[2:]] == [
        '~ image: "local/busybox:1" -> "local/busybox:2"  # forces replacement'
    ]


def test_the_json_plan_names_each_field_by_its_readable_path() -> None:
    old = spec(env={"GREETING": "hello"}, labels={"app": "web"})
    new = spec(env={"GREETING": "bye"}, labels={"app": "web", "tier": "front"})
    change = diff_resource("Container", "web", new, old, in_place=Container.IN_PLACE)
    assert change is not None
    out = change_to_json(change)
    assert out["fields"] == [
        {
            "field": "env.GREETING",
            "op": "change",
            "old": "hello",
            "new": "bye",
            "forcesReplacement": True,
        },
        {"field": "labels.tier", "op": "add", "new": "front", "forcesReplacement": True},
    ]
    assert out["patch"] == change.patch  # what is applied and checked stays the JSON Patch


def test_a_spec_shown_on_a_page_is_tidy_and_in_the_models_order() -> None:
    full = spec(env={"A": "1"}, ports=[{"containerPort": 80}], healthcheck={"test": ["CMD", "x"]})
    tidy = tidy_spec("Container", dict(reversed(full.items())))
    assert list(tidy) == [k for k in spec_shape("Container").order if k in tidy]
    assert list(tidy) == [
        "node",
        "image",
        "imagePullPolicy",
        "env",
        "ports",
        "restartPolicy",
        "healthcheck",
        "networkMode",
        "state",
    ]
    assert tidy["env"] == [{"name": "A", "value": "1"}]  # no valueFrom: null
    assert tidy["ports"] == [{"containerPort": 80, "protocol": "tcp"}]  # no hostPort/hostIP
    assert list(tidy["healthcheck"]) == ["test", "interval", "timeout", "retries"]


def test_a_models_own_fields_come_before_those_it_inherits_and_new_fields_render() -> None:
    # A model another change adds (a base of shared fields, a new keyed list):
    # it renders in its declared order without an edit to the renderer.
    class Shared(StrictModel):
        extra: int = 0
        tmpfs: list[Tmpfs] = Field(default_factory=list)

    class Spec(Shared):
        image: str
        env: list[EnvVar] = Field(default_factory=list)

    shape = model_shape(Spec)
    assert shape.order == ("image", "env", "extra", "tmpfs")
    assert shape.child("tmpfs").order == ("target", "size")
    assert shape.default("extra") == 0


class Tmpfs(StrictModel):
    target: str
    size: int | None = None
