#!/usr/bin/env bash
# The real node's S3-compatible server, where the demo's and the real-node tests' tenants keep
# their backups (backup.storage=s3): versitygw (posix backend: each object a file), built from
# source (scripts/install-tools.sh versitygw) and packed as an image (images/build.sh
# versitygw), run as a system service on the real node.
#
#   scripts/s3.sh up     # namespace s3: root credentials, Deployment, Service, NetworkPolicy, bucket
#   scripts/s3.sh env    # KEY=VALUE lines: where pods and this machine reach it (no secret)
#   scripts/s3.sh down   # delete namespace s3 (the server, its credentials and every object)
#
# Called by scripts/realnode.sh up once CoreDNS runs (the cluster goes with its objects at
# `scripts/cluster.sh down`). What `up` makes, in namespace s3 (Pod Security `restricted`):
#   - Secret s3-root: the root access key pair, random, made here once and never printed (keys
#     access-key-id and secret-access-key: the odoo-tenant chart's defaults, so a copy of it in
#     a tenant namespace is that tenant's backup.s3.existingSecret);
#   - Deployment s3 (1 replica, on the real node like CoreDNS): versitygw on port 7070, its data
#     in an emptyDir (the objects live as long as the pod: a test bed's storage);
#   - Service s3 (http://s3.s3.svc:7070 from pods; its ClusterIP from this machine, through
#     kube-proxy: nothing listens on a host interface);
#   - NetworkPolicy s3: in, TCP 7070 only; out, nothing;
#   - the bucket saasodoo-backups, created through the S3 API from this machine (boto3 of
#     $PYTHON, default the project's .venv).
#
# Environment: SAASODOO_CLUSTER_NAME, SAASODOO_KWOK_WORKDIR (as scripts/cluster.sh), PYTHON.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER=${SAASODOO_CLUSTER_NAME:-saasodoo}
KWOK_WORKDIR=${SAASODOO_KWOK_WORKDIR:-$(dirname "$TOOLS_DIR")/kwok}
KUBECONFIG_PATH=$KWOK_WORKDIR/clusters/$CLUSTER/kubeconfig.yaml
KUBECTL=$(tool_bin kubernetes kubectl)
NAMESPACE=s3
SERVICE=s3
PORT=7070
SECRET=s3-root
BUCKET=saasodoo-backups
REGION=us-east-1
LABEL=saasodoo.dev/real-node
IMAGE=localhost/saasodoo/versitygw:$VERSITYGW_VERSION

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# ensure_secret: the root key pair, made once (random) from files only this user reads, so the
# secret key is never in a command line, a log or the output.
ensure_secret() {
  kubectl -n "$NAMESPACE" get secret "$SECRET" >/dev/null 2>&1 && return 0
  local dir status=0
  dir=$(umask 077 && mktemp -d)
  # An access key id of 20 upper-case letters and digits, a secret key of 40 characters, as AWS.
  LC_ALL=C tr -dc 'A-Z0-9' </dev/urandom | head -c 20 >"$dir/access-key-id" || true
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 >"$dir/secret-access-key" || true
  kubectl -n "$NAMESPACE" create secret generic "$SECRET" \
    --from-file="$dir/access-key-id" --from-file="$dir/secret-access-key" >/dev/null || status=$?
  rm -rf "$dir"
  return "$status"
}

apply_server() {
  kubectl apply --server-side --force-conflicts --field-manager=saasodoo-s3 -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $SERVICE, namespace: $NAMESPACE, labels: {app.kubernetes.io/name: versitygw}}
spec:
  replicas: 1
  strategy: {type: Recreate}  # one server per data directory
  selector: {matchLabels: {app.kubernetes.io/name: versitygw}}
  template:
    metadata: {labels: {app.kubernetes.io/name: versitygw}}
    spec:
      nodeSelector: {$LABEL: "true"}
      tolerations: [{key: $LABEL, operator: Exists, effect: NoSchedule}]
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext: {fsGroup: 65532}
      containers:
      - name: versitygw
        image: $IMAGE
        imagePullPolicy: Never
        args: [--port, ":$PORT", --region, $REGION, --health, /health, posix, /data]
        env:
        - name: ROOT_ACCESS_KEY_ID
          valueFrom: {secretKeyRef: {name: $SECRET, key: access-key-id}}
        - name: ROOT_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: $SECRET, key: secret-access-key}}
        ports: [{name: s3, containerPort: $PORT, protocol: TCP}]
        readinessProbe: {httpGet: {path: /health, port: $PORT}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /health, port: $PORT}, periodSeconds: 10}
        resources:
          requests: {cpu: 50m, memory: 64Mi}
          limits: {memory: 512Mi}
        securityContext:
          runAsUser: 65532
          runAsGroup: 65532
          runAsNonRoot: true
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: tmp, mountPath: /tmp}
      volumes:
      - {name: data, emptyDir: {}}
      - {name: tmp, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: $SERVICE, namespace: $NAMESPACE, labels: {app.kubernetes.io/name: versitygw}}
spec:
  selector: {app.kubernetes.io/name: versitygw}
  # Port and target port alike: a tenant's backup NetworkPolicy allows the endpoint URL's port,
  # which NetworkPolicies compare with the pod's port.
  ports: [{name: s3, port: $PORT, targetPort: $PORT, protocol: TCP}]
---
# Anyone may reach the S3 API (its credentials guard it), on its port only; the server reaches
# nothing.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: $SERVICE, namespace: $NAMESPACE}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: versitygw}}
  policyTypes: [Ingress, Egress]
  ingress: [{ports: [{port: $PORT, protocol: TCP}]}]
  egress: []
EOF
}

cluster_ip() { kubectl -n "$NAMESPACE" get service "$SERVICE" -o jsonpath='{.spec.clusterIP}'; }

# ensure_bucket: create the bucket through the S3 API at the Service's ClusterIP (kube-proxy
# routes it from this machine); the key pair goes to Python through its environment.
ensure_bucket() {
  local py=${PYTHON:-$REPO_ROOT/.venv/bin/python} access secret
  "$py" -c 'import boto3' 2>/dev/null ||
    { err "s3: $py cannot import boto3 (make venv, or set PYTHON)"; return 1; }
  access=$(kubectl -n "$NAMESPACE" get secret "$SECRET" -o jsonpath='{.data.access-key-id}' | base64 -d)
  secret=$(kubectl -n "$NAMESPACE" get secret "$SECRET" -o jsonpath='{.data.secret-access-key}' | base64 -d)
  S3_ENDPOINT="http://$(cluster_ip):$PORT" S3_BUCKET=$BUCKET S3_REGION=$REGION \
    AWS_ACCESS_KEY_ID=$access AWS_SECRET_ACCESS_KEY=$secret "$py" - <<'EOF'
import os, time
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["S3_REGION"],
                  config=Config(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=10,
                                retries={"max_attempts": 1}))
bucket, deadline = os.environ["S3_BUCKET"], time.monotonic() + 60
while True:  # the Service's rules reach kube-proxy a moment after the pod is Ready
    try:
        if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket=bucket)
        break
    except (BotoCoreError, ClientError) as exc:
        if time.monotonic() > deadline:
            raise SystemExit(f"s3: bucket {bucket} not created at {os.environ['S3_ENDPOINT']}: {exc}")
        time.sleep(1)
EOF
}

cmd_up() {
  [[ -x $(tool_bin versitygw versitygw) ]] ||
    { err "s3: versitygw is not built: scripts/install-tools.sh versitygw"; exit 1; }
  info "S3 server (versitygw $VERSITYGW_VERSION): namespace $NAMESPACE, http://$SERVICE.$NAMESPACE.svc:$PORT, bucket $BUCKET"
  kubectl apply --server-side --force-conflicts --field-manager=saasodoo-s3 -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
EOF
  ensure_secret
  apply_server
  kubectl -n "$NAMESPACE" rollout status "deploy/$SERVICE" --timeout=180s >&2
  ensure_bucket
}

cmd_env() {
  local ip
  ip=$(cluster_ip 2>/dev/null) ||
    { err "s3: no Service $NAMESPACE/$SERVICE in cluster '$CLUSTER' (scripts/s3.sh up)"; exit 1; }
  # Tenants' pods (chart values backup.s3.*); this machine's control plane (Settings); the
  # Secret holding the key pair (namespace/name, keys access-key-id and secret-access-key).
  echo "SAASODOO_S3_ENDPOINT=http://$SERVICE.$NAMESPACE.svc:$PORT"
  echo "SAASODOO_S3_BUCKET=$BUCKET"
  echo "SAASODOO_S3_REGION=$REGION"
  echo "SAASODOO_S3_SECRET=$NAMESPACE/$SECRET"
  echo "SAASODOO_BACKUP_S3_ENDPOINT=http://$ip:$PORT"
}

cmd_down() {
  kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=false >/dev/null
}

case ${1:-} in
  up) cmd_up ;;
  env) cmd_env ;;
  down) cmd_down ;;
  *)
    sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
