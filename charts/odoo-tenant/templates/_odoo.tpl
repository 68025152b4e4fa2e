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

{{/*
report.url: where wkhtmltopdf fetches a PDF report's pages and assets (odoo-init pins it at every
start). With workers, the gevent process (8072): it serves any route concurrently, so N reports
printing at once in the N HTTP workers never wait for a free worker to serve their own assets
(with report.url on 8069, two reports at once on 2 workers hold both until limit_time_real;
odoo/odoo#199880, #120987). Threaded (workers 0): 8069, its threads serve them. The host is the
Service's name, which the web pods resolve to themselves (hostAliases in _odoopod.tpl).
*/}}
{{- define "odoo-tenant.odoo.reportUrl" -}}
{{- printf "http://%s:%d" (include "odoo-tenant.names.odoo" .) (ternary 8072 8069 (eq (include "odoo-tenant.odoo.websocket" .) "true")) -}}
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
