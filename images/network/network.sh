#!/bin/sh
# Corral's network service: brings up lo, then runs a DHCP client on every wired
# interface (one that sits on a bus: virtio, ENA, PCI NICs; not bridges, veths or
# tunnels) and keeps it running to renew the lease. The lease is applied by
# udhcpc.script: address, default route, /etc/resolv.conf (the host's, bind-mounted).

ip link set lo up

pids=""
stop() {
    [ -n "$pids" ] && kill $pids 2>/dev/null
    wait
    exit 0
}
trap stop TERM INT

for dev in /sys/class/net/*; do
    name=${dev##*/}
    [ "$name" = lo ] && continue
    [ -e "$dev/device" ] || continue
    [ "$(cat "$dev/type" 2>/dev/null)" = 1 ] || continue
    echo "network: DHCP on $name"
    ip link set "$name" up
    udhcpc -f -i "$name" -t 10 -T 2 -A 5 -x "hostname:$(hostname)" \
        -s /usr/libexec/corral/udhcpc.script &
    pids="$pids $!"
done

if [ -z "$pids" ]; then
    echo "network: no wired interface found"
    # Stay up, so that `restart: always` does not spin; nothing to manage.
    while :; do sleep 3600 & wait $!; done
fi
wait
