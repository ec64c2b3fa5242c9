#!/bin/sh
# Corral's network service. The manager hands it a plan in CORRAL_NETWORK, one step
# per entry, `;`-separated, taken in order: first the bonds and VLANs to make,
#   bond0 bond [bond.OPTION=VALUE ...]     a bond (`ip link add type bond`)
#   eth1 slave master=bond0                eth1 joins bond0
#   bond0.100 vlan link=bond0 id=100       a VLAN on bond0
# then one entry per interface that carries addresses:
#   eth0 dhcp [mtu=N]                      DHCP (busybox udhcpc), kept running to renew
#   eth1 static addr=A/N[,B/M] [gw=G] [gw6=G6] [mtu=N]
#   eth2 none [mtu=N]                      up, no address
# The kernel modules bonds and VLANs need (bonding, 8021q) the manager has loaded: this
# service cannot load modules.
# and, when configured, CORRAL_DNS / CORRAL_DNS_SEARCH (space-separated), which replace
# what DHCP says. Which interfaces are wired, and what each gets, the manager decides
# (manager/src/network.rs); an interface the plan leaves out is left alone.
# Leases are applied by udhcpc.script; /etc/resolv.conf is the host's, bind-mounted.

# iproute2's ip, by its path: Debian's busybox-static sh runs its own applets before
# anything on PATH, and busybox's ip makes a bond or VLAN without its options.
ip() { /usr/bin/ip "$@"; }

ip link set lo up

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
    addr="" gw="" gw6="" mtu="" master="" link="" id="" bondargs=""
    for opt in "$@"; do
        case "$opt" in
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
    case "$mode" in
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
        slave)
            # The kernel enslaves only an interface that is down; what it had (DHCP
            # before the configuration arrived) is the bond's to carry now.
            ip link set "$name" down
            ip addr flush dev "$name"
            ip link set "$name" master "$master" && echo "network: $name joins $master"
            ip link set "$name" up
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
            udhcpc -f -i "$name" -t 10 -T 2 -A 5 -x "hostname:$(hostname)" \
                -s /usr/libexec/corral/udhcpc.script &
            pids="$pids $!"
            ;;
        static)
            ip addr flush dev "$name"
            IFS=','
            for a in $addr; do
                ip addr add "$a" dev "$name" && echo "network: $name $a"
            done
            IFS=' '
            [ -n "$gw" ] && ip -4 route replace default via "$gw" dev "$name" &&
                echo "network: $name default route via $gw"
            [ -n "$gw6" ] && ip -6 route replace default via "$gw6" dev "$name"
            ;;
        none)
            echo "network: $name up, no address"
            ;;
    esac
    IFS=';'
done
IFS=' '

if [ -z "$pids" ]; then
    # Nothing to renew; stay up, so that `restart: always` does not spin.
    while :; do sleep 3600 & wait $!; done
fi
wait
