#!/bin/sh
# Corral's network service. The manager hands it a plan in CORRAL_NETWORK, one entry
# per wired interface, `;`-separated:
#   eth0 dhcp [mtu=N]                      DHCP (busybox udhcpc), kept running to renew
#   eth1 static addr=A/N[,B/M] [gw=G] [gw6=G6] [mtu=N]
#   eth2 none [mtu=N]                      up, no address
# and, when configured, CORRAL_DNS / CORRAL_DNS_SEARCH (space-separated), which replace
# what DHCP says. Which interfaces are wired, and what each gets, the manager decides
# (manager/src/network.rs); an interface the plan leaves out is left alone.
# Leases are applied by udhcpc.script; /etc/resolv.conf is the host's, bind-mounted.

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
    addr="" gw="" gw6="" mtu=""
    for opt in "$@"; do
        case "$opt" in
            addr=*) addr=${opt#addr=} ;;
            gw=*) gw=${opt#gw=} ;;
            gw6=*) gw6=${opt#gw6=} ;;
            mtu=*) mtu=${opt#mtu=} ;;
        esac
    done
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
