#!/bin/sh
# Remove the iptables state pouchd's libnetwork (vendored from Docker) creates: the DOCKER,
# DOCKER-USER and DOCKER-ISOLATION-STAGE-* chains in the filter and nat tables, and every rule of
# the built-in chains that jumps to them or names the bridge ($1, p0 by default).
# Run only where no Docker engine is installed (pouchd refuses to run beside one).
# Prints one line per rule or chain removed; nothing when there was nothing to do.
bridge=${1:-p0}
command -v iptables >/dev/null 2>&1 || exit 0
for table in filter nat; do
    rules=$(iptables -w -t "$table" -S 2>/dev/null) || continue
    echo "$rules" | grep -E "^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) " \
        | grep -E -- "-j DOCKER(-[A-Z0-9-]+)?( |$)|-[io] $bridge( |$)" \
        | while IFS= read -r rule; do
            # the rule as printed by -S, with -A turned into -D (word splitting is what iptables wants)
            # shellcheck disable=SC2086
            iptables -w -t "$table" -D ${rule#-A } && echo "$table: removed rule $rule"
        done
    for chain in $(echo "$rules" | sed -n 's/^-N \(DOCKER[A-Z0-9-]*\)$/\1/p'); do
        iptables -w -t "$table" -F "$chain"
    done
    for chain in $(echo "$rules" | sed -n 's/^-N \(DOCKER[A-Z0-9-]*\)$/\1/p'); do
        iptables -w -t "$table" -X "$chain" && echo "$table: removed chain $chain"
    done
done
exit 0
