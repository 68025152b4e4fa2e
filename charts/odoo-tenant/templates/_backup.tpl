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

{{/*
The backup CronJob's schedule: backup.schedule, else a time in 01:00-04:59 (UTC, or
backup.timeZone) derived from the tenant id, so that plain `helm install`s spread their backups
as saasodoo does (saasodoo.core.values.backup_schedule: the first 4 bytes of the id's SHA-256,
big-endian, modulo the window's 240 minutes).
*/}}
{{- define "odoo-tenant.backup.schedule" -}}
{{- if .Values.backup.schedule -}}
{{- .Values.backup.schedule -}}
{{- else -}}
{{- $digits := dict "0" 0 "1" 1 "2" 2 "3" 3 "4" 4 "5" 5 "6" 6 "7" 7 "8" 8 "9" 9 "a" 10 "b" 11 "c" 12 "d" 13 "e" 14 "f" 15 -}}
{{- $slot := 0 -}}
{{- range $c := splitList "" (sha256sum (include "odoo-tenant.names.tenantId" .) | substr 0 8) -}}
{{- $slot = add (mul $slot 16) (get $digits $c) -}}
{{- end -}}
{{- $minutes := mod $slot 240 -}}
{{- printf "%d %d * * *" (mod $minutes 60) (add 1 (div $minutes 60)) -}}
{{- end -}}
{{- end -}}
