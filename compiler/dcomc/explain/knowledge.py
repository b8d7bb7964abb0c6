"""The knowledge base behind `dcomc explain` (`data/explain.yaml`): its models, validated
on load, every statement with its source. The analyses and the report both read it."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dcomc.front.load import load_data
from dcomc.plan.model import RESOURCE_KINDS, Resource, data_fields

Role = Literal["server", "client"]
Analysis = Literal["client_identity", "launch_limit", "auth_level", "workgroup_accounts",
                   "callback_identity", "firewall_scope", "addresses"]
KINDS: dict[str, type[Resource]] = {cls.kind: cls for cls in RESOURCE_KINDS}


# --- the knowledge base ----------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LookAt(_Model):
    """Where a cause shows in a plan: a resource kind, or an analysis across hosts."""

    kind: str | None = None
    analysis: Analysis | None = None
    roles: tuple[Role, ...] = ()
    where: dict[str, str] = Field(default_factory=dict)
    what: str

    @model_validator(mode="after")
    def _one_target(self) -> LookAt:
        if (self.kind is None) == (self.analysis is None):
            raise ValueError("give exactly one of `kind` and `analysis`")
        if self.kind is not None:
            cls = KINDS.get(self.kind)
            if cls is None:
                raise ValueError(f"unknown resource kind {self.kind!r} "
                                 f"(kinds: {', '.join(KINDS)})")
            names = set(data_fields(cls))
            for key in self.where:
                if key not in names:
                    raise ValueError(f"{self.kind} has no field {key!r} "
                                     f"(fields: {', '.join(sorted(names))})")
        elif self.where:
            raise ValueError("`where` goes with `kind`, not with `analysis`")
        return self


class Cause(_Model):
    title: str
    detail: str
    source: str
    guide: str | None
    look_at: tuple[LookAt, ...]
    check: str
    check_source: str


class SeenAs(_Model):
    text: str
    source: str


class Entry(_Model):
    short: str  # for the list of known codes
    type: Literal["hresult", "event"]
    name: str
    name_source: str
    meaning: str
    meaning_source: str
    seen_as: tuple[SeenAs, ...] = ()
    causes: tuple[Cause, ...] = Field(min_length=1)


class KnowledgeBase(_Model):
    codes: dict[str, Entry]

    @model_validator(mode="after")
    def _canonical_keys(self) -> KnowledgeBase:
        for key, entry in self.codes.items():
            if entry.type == "hresult" and not re.fullmatch(r"0x[0-9A-F]{8}", key):
                raise ValueError(f"HRESULT {key!r}: write it as 0x and 8 upper-case hex digits")
            if entry.type == "event" and not re.fullmatch(r"[1-9][0-9]{0,4}", key):
                raise ValueError(f"event {key!r}: write the event id in decimal")
        return self


@cache
def knowledge() -> KnowledgeBase:
    text = resources.files("dcomc").joinpath("data/explain.yaml").read_text(encoding="utf-8")
    return KnowledgeBase.model_validate(load_data(text))


def known_codes() -> list[str]:
    return [f"{key} ({entry.short})" for key, entry in knowledge().codes.items()]
