"""The starter spec `dcomc init` writes: a small, commented site that passes `dcomc check`
as it is, so that a new site starts from a spec that builds and is edited from there.

The text is a constant, not generated from the models: its comments explain choices (why a
client runs as a user, why `password: prompt`), which no model description can; a test
checks that it still loads, passes check without a warning, matches the JSON Schema, and
names only keys the models know.
"""

from __future__ import annotations

STARTER = """\
# yaml-language-server: $schema=dcomc-spec.schema.json
# ^ editor completion and validation: write the schema beside this file with
#   `dcomc schema -o dcomc-spec.schema.json` (see docs/spec.md, "Editor support").
#
# A dcomc site spec: one file for a whole plant line. Check it, see what it compiles to,
# and build the per-host bundle:
#   dcomc check site.yaml && dcomc plan site.yaml && dcomc build site.yaml
# Every key is described in docs/spec.md; every error code in docs/errors.md.
dcomc: 1                                  # spec format version

site:
  name: my-line                           # names the bundle folder, firewall rules, backups
  description: Packaging line 1
  identity: workgroup                     # workgroup | domain | mixed (guide §2.1)

accounts:
  users:
    opcuser:                              # the identity the OPC clients run as
      description: Identity the OPC clients run as
      password: prompt                    # the only allowed value: asked at install time
      member_of: [Distributed COM Users]  # may launch remotely: no machine-limit edit needed
    opcsvc:                               # Log On account of the OPC server service
      description: Log On account of the OPC server
      password: prompt
      member_of: [Administrators]         # a service account must be an administrator (§3.2)
  groups:
    OPC Users:                            # who may launch and call the site's servers
      members: [opcuser, opcsvc]

servers:
  opcserver:
    product: kepserverex-v6               # `dcomc catalog` lists the products it knows;
                                          # or give progid, clsid, executable, service
    service_account: opcsvc               # runs as a Windows service under this account
    launch:                               # Launch and Activation Permissions (§4.1)
      OPC Users: [local_launch, remote_launch, local_activation, remote_activation]
    access:                               # Access Permissions (§4.1)
      OPC Users: [local_access, remote_access]

clients:
  hmi:
    executable: 'C:\\Program Files (x86)\\Example HMI\\hmi.exe'   # single quotes keep \\
    run_as: opcuser                       # an OPC client runs as the authenticated user

hosts:                                    # the PCs, by computer name (at most 15 characters)
  SCADA01:
    address: 10.0.0.10
    servers: [opcserver]
  # A host range: HMI01 at 10.0.0.21 ... HMI04 at 10.0.0.24, each with the keys below.
  HMI[01-04]:
    address: 10.0.0.[21-24]
    clients: [hmi]

# Settings per role (server, client); every key left out is the guide's default (docs/spec.md
# lists them, and how a host's own `machine:` overrides them).
machine:
  server:
    dcom:
      launch_limits: {}                   # nothing added: Distributed COM Users may launch
"""


def init_text() -> str:
    """The starter spec, as `dcomc init` writes it."""
    return STARTER
