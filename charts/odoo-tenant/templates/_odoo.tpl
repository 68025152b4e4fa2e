{{/* Odoo's public URL, its websocket and filestore modes, and where its own secrets come from. */}}

{{/* Public host of the tenant: <subdomain>.<baseDomain>. */}}
{{- define "odoo-tenant.odoo.host" -}}
{{- printf "%s.%s" (default (include "odoo-tenant.names.tenantId" .) .Values.ingress.subdomain) .Values.ingress.baseDomain -}}
{{- end -}}

{{- define "odoo-tenant.odoo.url" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) (include "odoo-tenant.odoo.host" .) -}}
{{- end -}}

{{/* Whether Odoo runs the gevent (websocket) process on 8072: only in multi-worker mode. */}}
{{- define "odoo-tenant.odoo.websocket" -}}
{{- if gt (int .Values.odoo.config.workers) 0 -}}true{{- end -}}
{{- end -}}

{{/* Whether the filestore is ReadWriteOnce (one node at a time). */}}
{{- define "odoo-tenant.odoo.filestoreRwo" -}}
{{- if has "ReadWriteOnce" .Values.odoo.persistence.accessModes -}}true{{- end -}}
{{- end -}}

{{/*
Secret names and keys Odoo's own secrets come from: the existing Secrets named in values, or
the chart-managed "<fullname>-odoo".
*/}}
{{- define "odoo-tenant.odoo.adminSecretName" -}}
{{- default (include "odoo-tenant.names.odooSecret" .) .Values.odoo.admin.existingSecret -}}
{{- end -}}
{{- define "odoo-tenant.odoo.adminSecretKey" -}}
{{- ternary .Values.odoo.admin.existingSecretKey "admin-password" (ne .Values.odoo.admin.existingSecret "") -}}
{{- end -}}
{{- define "odoo-tenant.odoo.masterSecretName" -}}
{{- default (include "odoo-tenant.names.odooSecret" .) .Values.odoo.masterPassword.existingSecret -}}
{{- end -}}
{{- define "odoo-tenant.odoo.masterSecretKey" -}}
{{- ternary .Values.odoo.masterPassword.existingSecretKey "master-password" (ne .Values.odoo.masterPassword.existingSecret "") -}}
{{- end -}}
