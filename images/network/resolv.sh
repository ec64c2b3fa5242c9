# Sourced by the DHCP scripts: /etc/resolv.conf (the host's, bind-mounted, written in
# place) from what every lease said, DHCPv4's servers first. Each lease's servers and
# search domains are kept in /run/corral-dns/<v4|v6>.<interface>. corral.network.dns,
# when set, is what network.sh wrote, and stays.

# Keeps what one lease said: $1 the file's name (v4.eth0), $2 servers, $3 domains.
keep_dns() {
    mkdir -p /run/corral-dns
    {
        for d in $3; do echo "search $d"; done
        for s in $2; do echo "nameserver $s"; done
    } > "/run/corral-dns/$1"
}

write_resolv() {
    [ -n "$CORRAL_DNS" ] && return 0
    servers="" search=""
    for f in /run/corral-dns/*; do
        [ -f "$f" ] || continue
        while read -r kind value; do
            case "$kind $servers $search " in
                "nameserver "*" $value "*) ;;
                nameserver*) servers="$servers $value" ;;
                "search "*" $value "*) ;;
                search*) search="$search $value" ;;
            esac
        done < "$f"
    done
    [ -n "$servers" ] || return 0
    {
        [ -n "$search" ] && echo "search$search"
        for s in $servers; do echo "nameserver $s"; done
    } > /etc/resolv.conf
}

# Runs, once per interface, the post_up commands network.sh handed over in
# CORRAL_POST_UP (base64 words): after the first lease.
post_up_once() {
    [ -n "$CORRAL_POST_UP" ] || return 0
    [ -e "/run/corral-post-up.$interface" ] && return 0
    : > "/run/corral-post-up.$interface"
    for b in $CORRAL_POST_UP; do
        cmd=$(echo "$b" | base64 -d) || continue
        echo "network: running for $interface: $cmd"
        iface="$interface" sh -c "ip() { /usr/bin/ip \"\$@\"; }; $cmd" ||
            echo "network: command failed (exit $?) for $interface: $cmd"
    done
}
