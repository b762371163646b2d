#!/bin/sh
# The gateway container's command in Kubernetes (mounted from the ConfigMap beside nginx.conf).
#
# nginx's `resolver` needs the DNS server's address and does not use search domains, and both
# differ between clusters and namespaces: read them from the pod's own /etc/resolv.conf
# (kubelet writes the cluster DNS as nameserver and "<namespace>.svc.<cluster domain>" as the
# first search domain), fill in the rendering's two placeholders, then run nginx in the
# foreground with its pid file and temporary folders under /tmp (the root filesystem is
# read-only).
#
# RESOLV_CONF, GATEWAY_TEMPLATE, GATEWAY_CONF and GATEWAY_RENDER_ONLY=1 let
# `make deploy-check` run the same steps outside a cluster and test the result with nginx -t.
set -eu
resolv=${RESOLV_CONF:-/etc/resolv.conf}
template=${GATEWAY_TEMPLATE:-/etc/nginx/gateway/nginx.conf}
conf=${GATEWAY_CONF:-/tmp/nginx.conf}

nameserver=$(awk '$1 == "nameserver" { print $2; exit }' "$resolv")
domain=$(awk '$1 == "search" { print $2; exit }' "$resolv")
if [ -z "$nameserver" ] || [ -z "$domain" ]; then
    echo "gateway: no nameserver or search domain in $resolv" >&2
    exit 1
fi
case $nameserver in
    *:*) nameserver="[$nameserver]" ;; # an IPv6 resolver address goes in brackets
esac
sed -e "s|@CLUSTER_DNS@|$nameserver|g" -e "s|@SERVICE_DOMAIN@|$domain|g" "$template" >"$conf"

if [ "${GATEWAY_RENDER_ONLY:-0}" = 1 ]; then
    exit 0
fi
exec nginx -p /tmp/ -c "$conf" -g 'daemon off;'
