{{/* Image references of the Odoo and PostgreSQL containers. */}}

{{/* Effective Odoo image tag: odoo.image.tag or odoo.version. */}}
{{- define "odoo-tenant.images.odooTag" -}}
{{- default .Values.odoo.version .Values.odoo.image.tag -}}
{{- end -}}

{{/*
Odoo series ("18.0") the release runs: the series its image tag starts with (a dated build such
as `18.0-20250218`), else odoo.version's. Odoo does not migrate a database across series.
*/}}
{{- define "odoo-tenant.images.odooSeries" -}}
{{- $series := regexFind "^[0-9]+\\.[0-9]+" (include "odoo-tenant.images.odooTag" .) -}}
{{- default (regexFind "^[0-9]+\\.[0-9]+" (toString .Values.odoo.version)) $series -}}
{{- end -}}

{{/* Odoo series of an image reference (`…/odoo:18.0-20250218@sha256:…` -> `18.0`); empty when its tag names none. */}}
{{- define "odoo-tenant.images.seriesOfRef" -}}
{{- regexReplaceAll "@.*$" . "" | regexFind "[^:/]+$" | regexFind "^[0-9]+\\.[0-9]+" -}}
{{- end -}}

{{/* Image reference from an image block: registry/repository:tag[@digest]. */}}
{{- define "odoo-tenant.images.ref" -}}
{{- $ref := printf "%s/%s:%s" .image.registry .image.repository .tag -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "odoo-tenant.images.odoo" -}}
{{- include "odoo-tenant.images.ref" (dict "image" .Values.odoo.image "tag" (include "odoo-tenant.images.odooTag" .)) -}}
{{- end -}}

{{- define "odoo-tenant.images.postgresql" -}}
{{- include "odoo-tenant.images.ref" (dict "image" .Values.postgresql.image "tag" (toString .Values.postgresql.image.tag)) -}}
{{- end -}}
