#!/bin/sh
# Render nginx.conf.template to OUT, substituting only our variables so nginx's own ($host, ...) survive.
# Usage: nginx/render.sh OUT   (with the variables below set in the environment)
set -eu

vars="NGINX_LISTEN NGINX_USER NGINX_RUN_DIR NGINX_STATIC_ROOT SSE_UPSTREAM DJANGO_UPSTREAM"

if [ "$#" -ne 1 ]; then
    echo "usage: $0 OUT" >&2
    exit 2
fi
out=$1
template="$(dirname "$0")/nginx.conf.template"

missing=""
shell_format=""
for var in $vars; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        missing="$missing $var"
    fi
    shell_format="$shell_format \${$var}"
done
if [ -n "$missing" ]; then
    echo "$0: set these variables to render $template:$missing" >&2
    exit 1
fi

# SSE_UPSTREAM may list several servers, comma-separated: each becomes a `server` line of the upstream.
SSE_UPSTREAM=$(printf '%s' "$SSE_UPSTREAM" | sed 's/,/;\n        server /g')
export SSE_UPSTREAM

envsubst "$shell_format" < "$template" > "$out.tmp"
mv "$out.tmp" "$out"
