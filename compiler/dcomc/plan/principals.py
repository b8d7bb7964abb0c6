"""Principal names in a spec → typed principals (well-known SID, local, domain, raw SID).

Windows compares account names case-insensitively, so lookups fold case; the principal keeps
the spelling of its definition, so every artifact names it the same way.
"""

from __future__ import annotations

from dcomc.front.spec import Spec
from dcomc.plan.model import Principal, PrincipalKind
from dcomc.windows import sids

# Well-known groups that can hold members (the others are logon identities, not groups).
MEMBER_GROUPS = frozenset({"S-1-5-32-544", "S-1-5-32-545", "S-1-5-32-562", "S-1-5-32-559"})


class Resolver:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.domain_allowed = spec.site.identity in ("domain", "mixed")
        self._users = {name.casefold(): name for name in spec.accounts.users}
        self._groups = {name.casefold(): name for name in spec.accounts.groups}

    def user_key(self, name: str) -> str | None:
        return self._users.get(name.casefold())

    def group_key(self, name: str) -> str | None:
        return self._groups.get(name.casefold())

    def resolve(self, name: str) -> Principal | None:
        """The principal a name denotes, or None if it denotes nothing this site knows."""
        key = self.user_key(name)
        if key is not None:
            user = self.spec.accounts.users[key]
            return self._site_account(key, user.sid)
        key = self.group_key(name)
        if key is not None:
            group = self.spec.accounts.groups[key]
            return self._site_account(key, group.sid)
        known = sids.well_known(name)
        if known is not None:
            return Principal(known.name, PrincipalKind.WELL_KNOWN, known.sid)
        if sids.is_sid(name):
            return Principal(name, PrincipalKind.SID, name)
        if "\\" in name and self.domain_allowed:
            return Principal(name, PrincipalKind.DOMAIN, None)
        return None

    def _site_account(self, key: str, sid: str | None) -> Principal:
        kind = PrincipalKind.DOMAIN if "\\" in key else PrincipalKind.LOCAL
        return Principal(key, kind, sid)

    def is_user(self, principal: Principal) -> bool:
        """Could log on as a service / run a client: a site user or an unlisted domain account."""
        if self.user_key(principal.name) is not None:
            return True
        return principal.kind is PrincipalKind.DOMAIN and self.group_key(principal.name) is None

    def can_hold_members(self, principal: Principal) -> bool:
        """A group whose membership this PC can change: a local site group or a builtin group."""
        key = self.group_key(principal.name)
        if key is not None:
            group = self.spec.accounts.groups[key]
            return not group.existing and "\\" not in key
        return principal.sid in MEMBER_GROUPS
