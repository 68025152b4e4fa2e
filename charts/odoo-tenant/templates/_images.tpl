{{/* Image references of the Odoo and PostgreSQL containers. */}}

{{/* Effective Odoo image tag: odoo.image.tag or odoo.version. */}}
{{- define "odoo-tenant.images.odooTag" -}}
{{- default .Values.odoo.version .Values.odoo.image.tag -}}
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
