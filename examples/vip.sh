#!/bin/sh
# on_start/on_stop/on_role_change: keep the VIP on the primary only.
# Arguments from hatui (as from Patroni): $1 action, $2 role, $3 scope.
VIP=${VIP:-10.0.0.100/32} DEV=${DEV:-lo}   # a loopback alias; on a real network, the service address and its NIC
case "$1:$2" in
    on_stop:*)  ip addr del "$VIP" dev "$DEV" 2>/dev/null ;;
    *:primary)  ip addr add "$VIP" dev "$DEV" 2>/dev/null ;;
    *)          ip addr del "$VIP" dev "$DEV" 2>/dev/null ;;
esac
exit 0
