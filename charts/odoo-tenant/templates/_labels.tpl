{{/* Labels and the common metadata of every object. */}}

{{/*
Standard labels of every object. The selector labels are a small immutable subset of them.
Usage: include "odoo-tenant.labels.standard" (dict "context" $ "component" "odoo")
With "pod" true (the pod templates of the Deployments, the StatefulSet and the CronJob), no
`helm.sh/chart`: a chart version that changes nothing in the pods must not restart them (a
new label in a pod template is a rollout: PostgreSQL's one pod would stop for it).
*/}}
{{- define "odoo-tenant.labels.standard" -}}
{{- $ctx := .context -}}
{{- if not .pod }}
helm.sh/chart: {{ include "odoo-tenant.names.chart" $ctx }}
{{- end }}
{{ include "odoo-tenant.labels.selector" . }}
{{- $version := include "odoo-tenant.images.odooTag" $ctx }}
{{- if eq (toString .component) "postgresql" }}
{{- $version = toString $ctx.Values.postgresql.image.tag }}
{{- end }}
app.kubernetes.io/version: {{ $version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: saasodoo
saasodoo.dev/tenant: {{ include "odoo-tenant.names.tenantId" $ctx | quote }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels: name, instance and (when given) component. Never add a mutable label here:
a Deployment's or StatefulSet's selector cannot change after creation.
*/}}
{{- define "odoo-tenant.labels.selector" -}}
app.kubernetes.io/name: {{ include "odoo-tenant.names.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/*
Common metadata of every object: name, namespace, labels, annotations.
Usage: include "odoo-tenant.labels.metadata" (dict "context" $ "name" $name "component" "odoo" "annotations" $extra)
*/}}
{{- define "odoo-tenant.labels.metadata" -}}
name: {{ .name }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "odoo-tenant.labels.standard" . | nindent 2 }}
{{- $annotations := merge (dict) (.annotations | default dict) (.context.Values.commonAnnotations | default dict) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* `helm.sh/resource-policy: keep` for the data-bearing objects, if odoo.persistence.keepOnUninstall. */}}
{{- define "odoo-tenant.labels.keepAnnotations" -}}
{{- if .Values.odoo.persistence.keepOnUninstall -}}
{{- dict "helm.sh/resource-policy" "keep" | toYaml -}}
{{- else -}}
{{- dict | toYaml -}}
{{- end -}}
{{- end -}}
