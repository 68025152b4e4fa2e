{{/*
Names, labels and shared fragments. Every helper is prefixed with the chart name: template
names are global across a chart and its subcharts, so a chart others embed must not clash.
*/}}

{{/* Chart name, or nameOverride. */}}
{{- define "odoo-tenant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: fullnameOverride, else the release name if it contains the chart
name, else "<release>-<chart>". Truncated to 63 characters (DNS label).
*/}}
{{- define "odoo-tenant.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of a component object: "<fullname>-<suffix>", the full name being cut first so that the
suffix always survives and two components never collide.
Usage: include "odoo-tenant.componentName" (dict "context" $ "suffix" "postgresql" "max" 52)
"max" (default 63) is lower for controllers whose generated names carry a suffix: a
StatefulSet's controller-revision-hash label and a CronJob's Job names must stay within 63.
*/}}
{{- define "odoo-tenant.componentName" -}}
{{- $max := int (default 63 .max) -}}
{{- $prefix := include "odoo-tenant.fullname" .context | trunc (int (sub $max (add 1 (len .suffix)))) | trimSuffix "-" -}}
{{- printf "%s-%s" $prefix .suffix -}}
{{- end -}}

{{/* Chart label value: "<name>-<version>". */}}
{{- define "odoo-tenant.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Tenant id: tenant.id or the release name. */}}
{{- define "odoo-tenant.tenantId" -}}
{{- default .Release.Name .Values.tenant.id | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels of every object. The selector labels are a small immutable subset of them.
Usage: include "odoo-tenant.labels" (dict "context" $ "component" "odoo")
*/}}
{{- define "odoo-tenant.labels" -}}
{{- $ctx := .context -}}
helm.sh/chart: {{ include "odoo-tenant.chart" $ctx }}
{{ include "odoo-tenant.selectorLabels" . }}
{{- $version := include "odoo-tenant.odoo.tag" $ctx }}
{{- if eq (toString .component) "postgresql" }}
{{- $version = toString $ctx.Values.postgresql.image.tag }}
{{- end }}
app.kubernetes.io/version: {{ $version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: saasodoo
saasodoo.dev/tenant: {{ include "odoo-tenant.tenantId" $ctx | quote }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels: name, instance and (when given) component. Never add a mutable label here:
a Deployment's or StatefulSet's selector cannot change after creation.
*/}}
{{- define "odoo-tenant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "odoo-tenant.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/*
Common metadata of every object: name, namespace, labels, annotations.
Usage: include "odoo-tenant.metadata" (dict "context" $ "name" $name "component" "odoo" "annotations" $extra)
*/}}
{{- define "odoo-tenant.metadata" -}}
name: {{ .name }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "odoo-tenant.labels" . | nindent 2 }}
{{- $annotations := merge (dict) (.annotations | default dict) (.context.Values.commonAnnotations | default dict) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* `helm.sh/resource-policy: keep` for the data-bearing objects, if odoo.persistence.keepOnUninstall. */}}
{{- define "odoo-tenant.keepAnnotations" -}}
{{- if .Values.odoo.persistence.keepOnUninstall -}}
{{- dict "helm.sh/resource-policy" "keep" | toYaml -}}
{{- else -}}
{{- dict | toYaml -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- names of objects */}}

{{- define "odoo-tenant.odoo.fullname" -}}
{{- include "odoo-tenant.fullname" . -}}
{{- end -}}

{{- define "odoo-tenant.cron.fullname" -}}
{{- include "odoo-tenant.componentName" (dict "context" . "suffix" "cron") -}}
{{- end -}}

{{- define "odoo-tenant.odoo.secretName" -}}
{{- include "odoo-tenant.componentName" (dict "context" . "suffix" "odoo") -}}
{{- end -}}

{{- define "odoo-tenant.odoo.configName" -}}
{{- include "odoo-tenant.componentName" (dict "context" . "suffix" "config") -}}
{{- end -}}

{{- define "odoo-tenant.scriptsName" -}}
{{- include "odoo-tenant.componentName" (dict "context" . "suffix" "scripts") -}}
{{- end -}}

{{- define "odoo-tenant.filestore.claimName" -}}
{{- default (include "odoo-tenant.componentName" (dict "context" . "suffix" "filestore")) .Values.odoo.persistence.existingClaim -}}
{{- end -}}

{{- define "odoo-tenant.postgresql.fullname" -}}
{{- include "odoo-tenant.componentName" (dict "context" . "suffix" "postgresql" "max" 52) -}}
{{- end -}}

{{- define "odoo-tenant.postgresql.dataClaimName" -}}
{{- printf "%s-data" (include "odoo-tenant.postgresql.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "odoo-tenant.postgresql.secretName" -}}
{{- default (include "odoo-tenant.componentName" (dict "context" . "suffix" "postgresql")) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{- define "odoo-tenant.backup.fullname" -}}
{{- include "odoo-tenant.componentName" (dict "context" . "suffix" "backup" "max" 52) -}}
{{- end -}}

{{- define "odoo-tenant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "odoo-tenant.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- images */}}

{{/* Effective Odoo image tag: odoo.image.tag or odoo.version. */}}
{{- define "odoo-tenant.odoo.tag" -}}
{{- default .Values.odoo.version .Values.odoo.image.tag -}}
{{- end -}}

{{/* Image reference from an image block: registry/repository:tag[@digest]. */}}
{{- define "odoo-tenant.imageRef" -}}
{{- $ref := printf "%s/%s:%s" .image.registry .image.repository .tag -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "odoo-tenant.odoo.image" -}}
{{- include "odoo-tenant.imageRef" (dict "image" .Values.odoo.image "tag" (include "odoo-tenant.odoo.tag" .)) -}}
{{- end -}}

{{- define "odoo-tenant.postgresql.image" -}}
{{- include "odoo-tenant.imageRef" (dict "image" .Values.postgresql.image "tag" (toString .Values.postgresql.image.tag)) -}}
{{- end -}}

{{/* ---------------------------------------------------------------- database */}}

{{- define "odoo-tenant.database.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "odoo-tenant.postgresql.fullname" . -}}
{{- else -}}
{{- required "externalDatabase.host is required when postgresql.enabled is false" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "odoo-tenant.database.port" -}}
{{- ternary 5432 .Values.externalDatabase.port .Values.postgresql.enabled -}}
{{- end -}}

{{- define "odoo-tenant.database.name" -}}
{{- ternary .Values.postgresql.auth.database .Values.externalDatabase.database .Values.postgresql.enabled -}}
{{- end -}}

{{- define "odoo-tenant.database.user" -}}
{{- ternary .Values.postgresql.auth.username .Values.externalDatabase.user .Values.postgresql.enabled -}}
{{- end -}}

{{/* Secret and key holding the password of the role Odoo connects with. */}}
{{- define "odoo-tenant.database.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "odoo-tenant.postgresql.secretName" . -}}
{{- else -}}
{{- required "externalDatabase.existingSecret is required when postgresql.enabled is false (a Secret with the password of externalDatabase.user)" .Values.externalDatabase.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "odoo-tenant.database.secretKey" -}}
{{- ternary "password" .Values.externalDatabase.existingSecretKey .Values.postgresql.enabled -}}
{{- end -}}

{{/* libpq environment of a container connecting to the tenant database as Odoo's role. */}}
{{- define "odoo-tenant.database.env" -}}
- name: PGHOST
  value: {{ include "odoo-tenant.database.host" . | quote }}
- name: PGPORT
  value: {{ include "odoo-tenant.database.port" . | quote }}
- name: PGDATABASE
  value: {{ include "odoo-tenant.database.name" . | quote }}
- name: PGUSER
  value: {{ include "odoo-tenant.database.user" . | quote }}
- name: PGSSLMODE
  value: {{ ternary "disable" .Values.externalDatabase.sslmode .Values.postgresql.enabled | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "odoo-tenant.database.secretName" . }}
      key: {{ include "odoo-tenant.database.secretKey" . }}
{{- end -}}

{{/* ---------------------------------------------------------------- odoo */}}

{{/* Public host of the tenant: <subdomain>.<baseDomain>. */}}
{{- define "odoo-tenant.host" -}}
{{- printf "%s.%s" (default (include "odoo-tenant.tenantId" .) .Values.ingress.subdomain) .Values.ingress.baseDomain -}}
{{- end -}}

{{- define "odoo-tenant.url" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) (include "odoo-tenant.host" .) -}}
{{- end -}}

{{/* Whether Odoo runs the gevent (websocket) process on 8072: only in multi-worker mode. */}}
{{- define "odoo-tenant.odoo.websocket" -}}
{{- if gt (int .Values.odoo.config.workers) 0 -}}true{{- end -}}
{{- end -}}

{{/* Whether the filestore is ReadWriteOnce (one node at a time). */}}
{{- define "odoo-tenant.filestore.rwo" -}}
{{- if has "ReadWriteOnce" .Values.odoo.persistence.accessModes -}}true{{- end -}}
{{- end -}}

{{/*
Secret names and keys Odoo's own secrets come from: the existing Secrets named in values, or
the chart-managed "<fullname>-odoo".
*/}}
{{- define "odoo-tenant.odoo.adminSecretName" -}}
{{- default (include "odoo-tenant.odoo.secretName" .) .Values.odoo.admin.existingSecret -}}
{{- end -}}
{{- define "odoo-tenant.odoo.adminSecretKey" -}}
{{- ternary .Values.odoo.admin.existingSecretKey "admin-password" (ne .Values.odoo.admin.existingSecret "") -}}
{{- end -}}
{{- define "odoo-tenant.odoo.masterSecretName" -}}
{{- default (include "odoo-tenant.odoo.secretName" .) .Values.odoo.masterPassword.existingSecret -}}
{{- end -}}
{{- define "odoo-tenant.odoo.masterSecretKey" -}}
{{- ternary .Values.odoo.masterPassword.existingSecretKey "master-password" (ne .Values.odoo.masterPassword.existingSecret "") -}}
{{- end -}}

{{/*
Pod-level security context of the restricted Pod Security Standard.
Usage: include "odoo-tenant.podSecurityContext" .Values.odoo.podSecurityContext
*/}}
{{- define "odoo-tenant.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .runAsUser }}
runAsGroup: {{ int .runAsGroup }}
fsGroup: {{ int .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
uid/gid of the `odoo` user of the official image of odoo.version: Ubuntu jammy (17.0), where
uid 100 is `_apt`, gives it 101; Ubuntu noble (18.0, 19.0) gives it 100. The group is 101 in both.
*/}}
{{- define "odoo-tenant.odoo.imageUser" -}}
{{- $uids := dict "17.0" 101 "18.0" 100 "19.0" 100 -}}
{{- toJson (dict "runAsUser" (get $uids (toString .Values.odoo.version) | default 100) "runAsGroup" 101 "fsGroup" 101) -}}
{{- end -}}

{{/*
Pod security context of every pod running the Odoo image (web, cron, backup/restore/verify
Jobs, helm test): odoo.podSecurityContext, its empty fields from the image's odoo user. The
same fsGroup in all of them, so that whichever mounts a volume first gives it that group.
*/}}
{{- define "odoo-tenant.odoo.podSecurityContext" -}}
{{- $image := include "odoo-tenant.odoo.imageUser" . | fromJson -}}
{{- $set := dict -}}
{{- range $key, $value := .Values.odoo.podSecurityContext -}}
{{- if not (kindIs "invalid" $value) -}}{{- $_ := set $set $key $value -}}{{- end -}}
{{- end -}}
{{- include "odoo-tenant.podSecurityContext" (merge $set $image) -}}
{{- end -}}

{{/*
Container security context of the restricted Pod Security Standard.
Usage: include "odoo-tenant.containerSecurityContext" (dict "readOnlyRootFilesystem" true)
*/}}
{{- define "odoo-tenant.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem }}
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling shared by every pod: pull secrets, node selector, tolerations. */}}
{{- define "odoo-tenant.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Random password kept across upgrades: the value already stored in the Secret if it exists
(lookup; empty with `helm template` and client-side dry runs), else a new random one.
Returns the base64-encoded value, ready for a Secret's `data`.
Usage: include "odoo-tenant.keptPassword" (dict "context" $ "secret" $name "key" "password")
*/}}
{{- define "odoo-tenant.keptPassword" -}}
{{- $existing := lookup "v1" "Secret" .context.Release.Namespace .secret -}}
{{- $value := "" -}}
{{- if $existing -}}
{{- $value = index ($existing.data | default dict) .key | default "" -}}
{{- end -}}
{{- if $value -}}
{{- $value -}}
{{- else -}}
{{- randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- end -}}
