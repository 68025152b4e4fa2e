{{/* The backup component: its PVC, scripts, client image and S3 endpoint. */}}

{{/* Whether the backup writes to a chart-managed PVC. */}}
{{- define "odoo-tenant.backup.claimed" -}}
{{- if and .Values.backup.enabled .Values.backup.persistence.enabled -}}true{{- end -}}
{{- end -}}

{{/* Image of the backup Jobs' PostgreSQL client: backup.pgClient.image, else the server's. */}}
{{- define "odoo-tenant.backup.pgClientImage" -}}
{{- $i := .Values.backup.pgClient.image -}}
{{- if $i.tag -}}
{{- $image := dict "registry" (default .Values.postgresql.image.registry $i.registry) "repository" (default .Values.postgresql.image.repository $i.repository) "digest" $i.digest -}}
{{- include "odoo-tenant.images.ref" (dict "image" $image "tag" (toString $i.tag)) -}}
{{- else -}}
{{- include "odoo-tenant.images.postgresql" . -}}
{{- end -}}
{{- end -}}

{{- define "odoo-tenant.backup.scriptsName" -}}
{{- include "odoo-tenant.names.component" (dict "context" . "suffix" "backup-scripts") -}}
{{- end -}}

{{/* Port of the S3 endpoint: explicit, else 443 (https) or 80 (http). */}}
{{- define "odoo-tenant.backup.s3Port" -}}
{{- $u := urlParse .Values.backup.s3.endpoint -}}
{{- $parts := splitList ":" $u.host -}}
{{- if eq (len $parts) 2 -}}{{ last $parts }}{{- else -}}{{ ternary "443" "80" (eq $u.scheme "https") }}{{- end -}}
{{- end -}}
