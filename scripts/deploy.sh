#!/usr/bin/env bash
# Install or upgrade the saasodoo platform (charts/saasodoo) into the cluster of the current
# kubeconfig: the namespace (labelled Pod Security "restricted"), then `helm upgrade --install`
# with your values file, waiting until the operator and the API are ready, then `helm test`.
#
#   scripts/deploy.sh -f my-values.yaml                 # or: make deploy VALUES=my-values.yaml
#   scripts/deploy.sh -f my-values.yaml --dry-run       # render and validate against the cluster only
#
# Options: -f/--values FILE (required, repeatable), -n/--namespace NS (saasodoo-system),
# -r/--release NAME (saasodoo), --timeout DURATION (10m), --dry-run, --no-test.
# Environment: KUBECONFIG (the cluster), HELM and KUBECTL (default: the pinned ones of the tool
# cache, else those on PATH). Secrets are never values: create the Secrets your values
# name first (README: "Installing the platform on a real cluster").
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

namespace=saasodoo-system release=saasodoo timeout=10m dry_run=0 run_test=1 values=()
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    -f | --values) [[ $# -ge 2 ]] || { err "$1 needs a file"; exit 2; }; values+=(--values "$2"); shift 2 ;;
    -n | --namespace) namespace=$2; shift 2 ;;
    -r | --release) release=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --no-test) run_test=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) err "unknown argument '$1'"; usage >&2; exit 2 ;;
  esac
done
((${#values[@]})) || { err "a values file is required (-f FILE): the platform needs at least api.ingress.host, api.supabase.* and api.session.existingSecret"; exit 2; }
for ((i = 1; i < ${#values[@]}; i += 2)); do
  [[ -r ${values[i]} ]] || { err "values file not readable: ${values[i]}"; exit 2; }
done

helm=${HELM:-$(tool_bin helm4 helm)}
[[ -x $helm ]] || helm=$(command -v helm) || { err "no helm: set HELM or run make tools"; exit 1; }
chart=$REPO_ROOT/charts/saasodoo

if ((dry_run)); then
  info "rendering $release into $namespace (dry run against the cluster; nothing is changed)"
  exec "$helm" upgrade --install "$release" "$chart" --namespace "$namespace" "${values[@]}" --dry-run=server
fi

kubectl=${KUBECTL:-$(tool_bin kubernetes kubectl)}
[[ -x $kubectl ]] || kubectl=$(command -v kubectl) || { err "no kubectl: set KUBECTL or run make tools"; exit 1; }
# helm's --create-namespace sets no labels: the namespace is applied with them (idempotent).
info "namespace $namespace: created if missing, Pod Security 'restricted' enforced"
cat <<YAML | "$kubectl" apply --server-side --field-manager=saasodoo-deploy -f - >/dev/null
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
YAML
# CRDs installed before the platform (`saasodoo operator install-crds`, a local operator) carry
# no Helm ownership, which Helm refuses to take over ("invalid ownership metadata"): they are
# handed to this release the way Helm adopts an existing resource (its label and annotations;
# the objects themselves are then updated by the upgrade). One owned by another release is
# left as it is: Helm then says which. Only when this release installs CRDs (crds.enabled).
rendered=$("$helm" template "$release" "$chart" --namespace "$namespace" "${values[@]}" 2>/dev/null || true)
[[ $rendered == *$'\nkind: CustomResourceDefinition'* ]] && for crd in "$chart"/files/crds/*.yaml; do
  owner=$("$kubectl" get -f "$crd" --ignore-not-found \
    -o jsonpath='{.metadata.name} {.metadata.annotations.meta\.helm\.sh/release-name}' 2>/dev/null || true)
  [[ -n $owner && $owner != *" "?* ]] || continue
  info "CRD ${owner% }: made without Helm (saasodoo operator install-crds); adopted by release $release"
  "$kubectl" label -f "$crd" app.kubernetes.io/managed-by=Helm --overwrite >/dev/null
  "$kubectl" annotate -f "$crd" "meta.helm.sh/release-name=$release" \
    "meta.helm.sh/release-namespace=$namespace" --overwrite >/dev/null
done
info "helm upgrade --install $release ($chart) in $namespace, waiting up to $timeout"
"$helm" upgrade --install "$release" "$chart" --namespace "$namespace" "${values[@]}" \
  --wait --timeout "$timeout"
if ((run_test)); then
  info "helm test $release"
  "$helm" test "$release" --namespace "$namespace" --timeout 5m
fi
info "done: $("$helm" status "$release" --namespace "$namespace" -o json | python3 -c 'import json, sys; d = json.load(sys.stdin); print("revision %s, %s" % (d["version"], d["info"]["status"]))')"
