#!/bin/sh
# Corral's network service. The manager hands it a plan in CORRAL_NETWORK, one step
# per entry, `;`-separated, taken in order: first the bridges, bonds and VLANs to make,
#   br0 bridge                             a bridge (`ip link add type bridge`)
#   bond0 bond [bond.OPTION=VALUE ...]     a bond (`ip link add type bond`)
#   eth1 slave master=bond0                eth1 joins bond0
#   bond0.100 vlan link=bond0 id=100       a VLAN on bond0
#   eth3 port master=br0                   eth3 joins br0
# then one entry per interface that carries addresses:
#   eth0 dhcp [mtu=N]                      DHCPv4 (busybox udhcpc) and DHCPv6
#                                          (udhcpc6), kept running to renew
#   eth1 static addr=A/N[,B/M] [gw=G] [gw6=G6] [mtu=N]
#   eth2 none [mtu=N]                      up, no address
# Any entry but a bridge, bond or VLAN may carry pre=B64 and post=B64 words: commands
# (a line of shell, in base64) run before the step and after it (for DHCP: once the
# first lease is bound), with $iface set to the interface's name. CORRAL_PRE_CMDS and
# CORRAL_POST_CMDS hold the commands run before the first step and after the last
# (base64 words, space-separated). A command that fails is reported and the rest go on;
# `ip` in a command is iproute2's, as here.
# The kernel modules (bridge, bonding, 8021q) and the IPv6 settings (router
# advertisements accepted: SLAAC) the manager has seen to: this service can neither
# load modules nor write /proc/sys.
# CORRAL_DNS / CORRAL_DNS_SEARCH (space-separated), when set, replace what DHCP says.
# Which interfaces are wired, and what each gets, the manager decides
# (manager/src/network.rs); an interface the plan leaves out is left alone.
# Leases are applied by udhcpc.script and udhcpc6.script, which write /etc/resolv.conf
# (the host's, bind-mounted) through resolv.sh.

# iproute2's ip, by its path: Debian's busybox-static sh runs its own applets before
# anything on PATH, and busybox's ip makes a bond or VLAN without its options.
ip() { /usr/bin/ip "$@"; }

ip link set lo up

# Runs base64-encoded commands ($2...) for interface $1 ("" for the network's own).
run_cmds() {
    iface=$1
    shift
    for b in "$@"; do
        cmd=$(echo "$b" | base64 -d) || continue
        echo "network: running${iface:+ for $iface}: $cmd"
        iface="$iface" sh -c "ip() { /usr/bin/ip \"\$@\"; }; $cmd" || echo "network: command failed (exit $?)${iface:+ for $iface}: $cmd"
    done
}

IFS=' '
run_cmds "" $CORRAL_PRE_CMDS

pids=""
stop() {
    [ -n "$pids" ] && kill $pids 2>/dev/null
    wait
    exit 0
}
trap stop TERM INT

if [ -n "$CORRAL_DNS" ]; then
    # Written in place: /etc/resolv.conf is the host's file, bind-mounted.
    {
        [ -n "$CORRAL_DNS_SEARCH" ] && echo "search $CORRAL_DNS_SEARCH"
        for d in $CORRAL_DNS; do echo "nameserver $d"; done
    } > /etc/resolv.conf
    echo "network: DNS $CORRAL_DNS${CORRAL_DNS_SEARCH:+ (search $CORRAL_DNS_SEARCH)}"
fi

IFS=';'
for entry in $CORRAL_NETWORK; do
    IFS=' '
    set -- $entry
    [ $# -ge 2 ] || continue
    name=$1 mode=$2
    shift 2
    addr="" gw="" gw6="" mtu="" master="" link="" id="" bondargs="" pre="" post=""
    for opt in "$@"; do
        case "$opt" in
            pre=*) pre="$pre ${opt#pre=}" ;;
            post=*) post="$post ${opt#post=}" ;;
            addr=*) addr=${opt#addr=} ;;
            gw=*) gw=${opt#gw=} ;;
            gw6=*) gw6=${opt#gw6=} ;;
            mtu=*) mtu=${opt#mtu=} ;;
            master=*) master=${opt#master=} ;;
            link=*) link=${opt#link=} ;;
            id=*) id=${opt#id=} ;;
            bond.*=*) kv=${opt#bond.}; bondargs="$bondargs ${kv%%=*} ${kv#*=}" ;;
        esac
    done
    run_cmds "$name" $pre
    case "$mode" in
        bridge)
            if ip link show dev "$name" >/dev/null 2>&1; then
                echo "network: bridge $name is there already"
            elif ip link add name "$name" type bridge; then
                echo "network: bridge $name"
            fi
            IFS=';'
            continue
            ;;
        bond)
            # Made once; a restarted service finds it with its members (a bond's mode
            # cannot change while it has any). One without members (made by the
            # driver, or by hand) is made again with the options.
            if [ -n "$(cat "/sys/class/net/$name/bonding/slaves" 2>/dev/null)" ]; then
                echo "network: bond $name is there already"
            elif { ! ip link show dev "$name" >/dev/null 2>&1 || ip link del "$name"; } &&
                ip link add "$name" type bond $bondargs; then
                echo "network: bond $name${bondargs:+ ($bondargs )}"
            fi
            IFS=';'
            continue
            ;;
        slave|port)
            # The kernel enslaves only an interface that is down; what it had (DHCP
            # before the configuration arrived) is the bond's or bridge's to carry now.
            ip link set "$name" down
            ip addr flush dev "$name"
            ip link set "$name" master "$master" && echo "network: $name joins $master"
            ip link set "$name" up
            run_cmds "$name" $post
            IFS=';'
            continue
            ;;
        vlan)
            if ip link show dev "$name" >/dev/null 2>&1; then
                echo "network: VLAN $name is there already"
            elif ip link add link "$link" name "$name" type vlan id "$id"; then
                echo "network: VLAN $name (id $id on $link)"
            fi
            IFS=';'
            continue
            ;;
    esac
    [ -n "$mtu" ] && ip link set "$name" mtu "$mtu"
    ip link set "$name" up
    case "$mode" in
        dhcp)
            echo "network: DHCP on $name${mtu:+ (mtu $mtu)}"
            # post_up runs from the script once the first lease is bound.
            CORRAL_POST_UP="$post" udhcpc -f -i "$name" -t 10 -T 2 -A 5 \
                -x "hostname:$(hostname)" -s /usr/libexec/corral/udhcpc.script &
            pids="$pids $!"
            # DHCPv6 beside it: an address where a server hands them out (EC2's IPv6
            # subnets); SLAAC needs nothing here (the kernel does it).
            udhcpc6 -f -i "$name" -t 3 -T 2 -A 60 -O dns -O search \
                -s /usr/libexec/corral/udhcpc6.script &
            pids="$pids $!"
            post=""
            ;;
        static)
            # IPv4 and global IPv6 addresses go; the link-local one that neighbour
            # discovery needs stays.
            ip -4 addr flush dev "$name"
            ip -6 addr flush dev "$name" scope global
            IFS=','
            for a in $addr; do
                ip addr add "$a" dev "$name" && echo "network: $name $a"
            done
            IFS=' '
            [ -n "$gw" ] && ip -4 route replace default via "$gw" dev "$name" &&
                echo "network: $name default route via $gw"
            [ -n "$gw6" ] && ip -6 route replace default via "$gw6" dev "$name" &&
                echo "network: $name IPv6 default route via $gw6"
            ;;
        none)
            echo "network: $name up, no address"
            ;;
    esac
    IFS=' '
    run_cmds "$name" $post
    IFS=';'
done
IFS=' '

run_cmds "" $CORRAL_POST_CMDS

if [ -z "$pids" ]; then
    # Nothing to renew; stay up, so that `restart: always` does not spin.
    while :; do sleep 3600 & wait $!; done
fi
wait
