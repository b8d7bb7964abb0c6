"""What every check rule gets (`Context`): the spec, its spans, the diagnostics and the
principal resolver, with the two reporting helpers the rules share."""

from __future__ import annotations

from typing import Any

from dcomc.checks.names import domain_account_problem
from dcomc.diagnostics import Diagnostics, did_you_mean
from dcomc.front.load import Loaded, NodePath
from dcomc.front.spec import Spec
from dcomc.plan.model import PrincipalKind
from dcomc.plan.principals import Resolver
from dcomc.windows.sids import SPEC_ALIASES


class Context:
    """What every rule gets: the spec, its spans, the diagnostics and the principal resolver."""

    def __init__(self, spec: Spec, loaded: Loaded, diags: Diagnostics, res: Resolver) -> None:
        self.spec, self.loaded, self.diags, self.res = spec, loaded, diags, res
        self._hints: dict[str, str] = {}  # difflib is slow; a typo may repeat on every host

    def error(self, path: NodePath, code: str, message: str, *, key: bool = False) -> None:
        span = self.loaded.key_span(path) if key else self.loaded.span(path)
        self.diags.error(span, code, message)

    def principal(self, path: NodePath, name: str, *, key: bool = False) -> Any:
        """The principal `name` stands for, or None with an error (E102 unknown, E202 a
        malformed DOMAIN\\name)."""
        principal = self.res.resolve(name)
        if principal is None:
            hint = ("; DOMAIN\\name accounts are only allowed in domain and mixed sites (set "
                    "site.identity: domain or mixed)" if "\\" in name else "")
            self.error(path, "E102", f"unknown principal '{name}': not a site user or group, a "
                       f"well-known principal, or a SID{self._closest(name)}{hint}", key=key)
        elif principal.kind is PrincipalKind.DOMAIN and self.res.user_key(name) is None and (
                self.res.group_key(name) is None):
            problem = domain_account_problem(name)
            if problem:
                self.error(path, "E202", problem, key=key)
                return None
        return principal

    def _closest(self, name: str) -> str:
        """The site account or well-known name `name` most likely misspells ('opcusr' for
        opcuser, 'Administrator' for Administrators), as a did-you-mean hint. The site's own
        accounts first and more loosely: 'opcservice' means the site's opcsvc far more likely
        than LOCAL SERVICE."""
        if name not in self._hints:
            accounts = self.spec.accounts
            self._hints[name] = did_you_mean(name, [*accounts.users, *accounts.groups], 0.7) \
                or did_you_mean(name, [w.name for w in SPEC_ALIASES], 0.8)
        return self._hints[name]
