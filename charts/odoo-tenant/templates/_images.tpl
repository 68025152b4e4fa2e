{{/* Image references of the Odoo and PostgreSQL containers. */}}

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
