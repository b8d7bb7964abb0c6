"""Host classes: the hosts of a site whose plans differ only in their name and address.

A plant line is a few kinds of PC repeated: 299 HMIs get the same accounts, permissions and
firewall openings. The review report describes each class once (issue 13), so a 300-host site
with 3 classes reads like a 3-host site. Resources compare without their provenance (the
spec line that caused them differs per host, the change does not), so two hosts are in one
class exactly when every target emits the same changes for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcomc.plan.model import HostPlan, Resource, SitePlan


@dataclass(frozen=True, slots=True)
class HostClass:
    """Hosts with equal roles and resources, in plan order; `number` counts from 1."""

    number: int
    roles: tuple[str, ...]
    resources: tuple[Resource, ...]
    hosts: tuple[HostPlan, ...]

    @property
    def first(self) -> HostPlan:
        """The class's representative: any member plans the same changes."""
        return self.hosts[0]

    @property
    def servers(self) -> bool:
        return "server" in self.roles


def host_classes(plan: SitePlan) -> tuple[HostClass, ...]:
    """The site's host classes in the order they are applied: classes with servers first
    (clients need their servers configured to test against), then by their first host."""
    members: dict[tuple[tuple[str, ...], tuple[Resource, ...]], list[HostPlan]] = {}
    for host in plan.hosts:
        members.setdefault((host.roles, host.resources), []).append(host)
    groups = sorted(members.items(), key=lambda item: "server" not in item[0][0])  # stable
    return tuple(HostClass(number, roles, resources, tuple(hosts))
                 for number, ((roles, resources), hosts) in enumerate(groups, start=1))
