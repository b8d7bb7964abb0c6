"""Windows account names: what the SAM accepts as a user or group name, and what a
DOMAIN\\name reference may look like. Shared by the check rules and their context."""

from __future__ import annotations

# Characters Windows refuses in user and group names (lusrmgr.msc, New-LocalUser docs).
BAD_ACCOUNT_CHARS = set('"/\\[]:;|=,+*?<>@')
NETBIOS_BAD = set('\\/:*?"<>|')
USER_NAME_MAX = 20  # SAM account name limit
GROUP_NAME_MAX = 256
DESCRIPTION_MAX = 48  # New-LocalUser -Description limit


def account_name_problem(name: str, limit: int) -> str | None:
    """Why `name` is not a valid Windows account name, or None."""
    if not name.strip() or not name.strip(". "):
        return "is empty or only dots and spaces"
    if len(name) > limit:
        return f"is longer than {limit} characters"
    bad = sorted({c for c in name if c in BAD_ACCOUNT_CHARS})
    if bad:
        return f"contains {' '.join(bad)} (Windows refuses \" / \\ [ ] : ; | = , + * ? < > @)"
    if name.endswith("."):
        return "ends with a dot"
    if name != name.strip():
        return "starts or ends with a space"
    return None


def netbios_domain_ok(domain: str) -> bool:
    """Whether `domain` can be a NetBIOS domain name (at most 15 characters, none of \\/:*?"<>|)."""
    return len(domain) <= 15 and not any(c in NETBIOS_BAD for c in domain)


def domain_name_problem(name: str) -> str | None:
    """Why the DOMAIN part of `DOMAIN\\name` is not a NetBIOS domain name, or None."""
    domain = name.rpartition("\\")[0]
    if not domain or not netbios_domain_ok(domain):
        return f"invalid domain name '{domain}' in '{name}'"
    return None


def domain_account_problem(name: str) -> str | None:
    """Why `DOMAIN\\name` is not a valid domain account reference, or None."""
    problem = domain_name_problem(name)
    if problem:
        return problem
    account = name.rpartition("\\")[2]
    problem = account_name_problem(account, GROUP_NAME_MAX)
    return f"invalid account name '{name}': it {problem}" if problem else None
