{{/* The chart's name. */}}
{{- define "saasodoo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The objects' base name: <release>-saasodoo, or the release name when it holds the chart's. */}}
{{- define "saasodoo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "saasodoo.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "saasodoo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "saasodoo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: saasodoo
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "operator"). */}}
{{- define "saasodoo.selector" -}}
app.kubernetes.io/name: {{ include "saasodoo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Name of a component's objects: (dict "root" $ "component" "api"). */}}
{{- define "saasodoo.component" -}}
{{- printf "%s-%s" (include "saasodoo.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image reference. */}}
{{- define "saasodoo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Pod Security "restricted": the pod's part. */}}
{{- define "saasodoo.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod Security "restricted": each container's part, read-only root filesystem. */}}
{{- define "saasodoo.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Spread a component's pods over nodes unless affinity is given: (dict "root" $ "component" "api" "affinity" .Values.api.affinity). */}}
{{- define "saasodoo.affinity" -}}
{{- if .affinity -}}
{{- toYaml .affinity -}}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "saasodoo.selector" . | nindent 12 }}
{{- end -}}
{{- end -}}

{{/* The settings both components read (SAASODOO_*). */}}
{{- define "saasodoo.settingsEnv" -}}
- name: SAASODOO_SYSTEM_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: SAASODOO_OPERATOR
  value: "true"
- name: SAASODOO_BASE_DOMAIN
  value: {{ .Values.settings.baseDomain | quote }}
- name: SAASODOO_INGRESS_CLASS
  value: {{ .Values.settings.ingressClass | quote }}
{{- with .Values.settings.storageClass }}
- name: SAASODOO_STORAGE_CLASS
  value: {{ . | quote }}
{{- end }}
- name: SAASODOO_NODE_POOL
  value: {{ .Values.settings.nodePool | quote }}
- name: SAASODOO_HELM_TIMEOUT
  value: {{ .Values.settings.helmTimeout | quote }}
- name: SAASODOO_FINAL_BACKUP_DAYS
  value: {{ .Values.settings.finalBackupDays | quote }}
- name: SAASODOO_OPERATOR_LEASE
  value: {{ .Values.operator.lease.name | quote }}
- name: SAASODOO_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- with .Values.tenants.values }}
- name: SAASODOO_TENANT_VALUES
  value: {{ toJson . | quote }}
{{- end }}
{{- with .Values.tenants.backupS3Secret }}
- name: SAASODOO_BACKUP_S3_SECRET
  value: {{ printf "%s/%s" $.Release.Namespace . | quote }}
{{- end }}
{{- range $name, $value := .Values.settings.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Checks of values the schema cannot express. */}}
{{- define "saasodoo.validate" -}}
{{- if and .Values.api.ingress.enabled (not .Values.api.ingress.host) -}}
{{- fail "api.ingress.host is required with api.ingress.enabled (the web UI's host name, e.g. saas.example.com)" -}}
{{- end -}}
{{- if not .Values.api.supabase.url -}}
{{- fail "api.supabase.url is required (the Supabase project's URL, or a GoTrue server's)" -}}
{{- end -}}
{{- if not .Values.api.supabase.existingSecret -}}
{{- fail "api.supabase.existingSecret is required (a Secret with the project's anon key; keys are never values)" -}}
{{- end -}}
{{- if not .Values.api.session.existingSecret -}}
{{- fail "api.session.existingSecret is required (a Secret with the key that signs session cookies)" -}}
{{- end -}}
{{- end -}}

{{- /* The Kubernetes API server's addresses and ports for the platform's egress, as JSON
{"cidrs": [...], "ports": [...]}: networkPolicy.kubeApiCidrs, else the addresses of the
`kubernetes` Service's EndpointSlices (looked up at install; empty under `helm template`); the
ports are networkPolicy.kubeApiPorts plus the EndpointSlices' ports. */ -}}
{{- define "saasodoo.kubeApi" -}}
{{- $np := .Values.networkPolicy }}
{{- $cidrs := $np.kubeApiCidrs }}
{{- $ports := $np.kubeApiPorts }}
{{- if not $cidrs }}
{{- $slices := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "" }}
{{- range (($slices).items | default list) }}
{{- if eq (index (.metadata.labels | default dict) "kubernetes.io/service-name" | default "") "kubernetes" }}
{{- range .endpoints }}{{ range .addresses }}{{ $cidrs = append $cidrs (printf "%s/32" .) }}{{ end }}{{ end }}
{{- range .ports }}{{ $ports = append $ports .port }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- dict "cidrs" $cidrs "ports" (uniq $ports) | toJson }}
{{- end }}
