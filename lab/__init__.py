"""The local VM lab: Debian VMs, an apt repository and an OCI registry on this machine."""
