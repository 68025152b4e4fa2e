{{/* Fragments of the NetworkPolicies (networkpolicy.yaml). */}}

{{- define "odoo-tenant.networkpolicy.odooPorts" -}}
- port: 8069
  protocol: TCP
{{- if include "odoo-tenant.odoo.websocket" . }}
- port: 8072
  protocol: TCP
{{- end }}
{{- end -}}

{{/* DNS egress of every pod that resolves names: networkPolicy.dns.to, else its selectors. */}}
{{- define "odoo-tenant.networkpolicy.dnsEgress" -}}
- to:
    {{- with .Values.networkPolicy.dns.to }}
    {{- toYaml . | nindent 4 }}
    {{- else }}
    - namespaceSelector:
        {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 8 }}
    {{- end }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{- define "odoo-tenant.networkpolicy.databaseEgress" -}}
{{- if .Values.postgresql.enabled -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "odoo-tenant.labels.selector" (dict "context" . "component" "postgresql") | nindent 10 }}
  ports:
    - port: 5432
      protocol: TCP
{{- else -}}
- ports:
    - port: {{ int .Values.externalDatabase.port }}
      protocol: TCP
  {{- with .Values.networkPolicy.egress.externalDatabase.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* Egress of the Odoo pods (web and cron). */}}
{{- define "odoo-tenant.networkpolicy.odooEgress" -}}
{{- $np := .Values.networkPolicy -}}
{{ include "odoo-tenant.networkpolicy.databaseEgress" . }}
{{ include "odoo-tenant.networkpolicy.dnsEgress" . }}
# The dedicated cron pod printing PDF reports: report.url, the Service, i.e. the web pods (a web
# pod reaches itself over loopback, see hostAliases in _odoopod.tpl).
- to:
    - podSelector:
        matchLabels:
          {{- include "odoo-tenant.labels.selector" (dict "context" . "component" "odoo") | nindent 10 }}
  ports:
    {{- include "odoo-tenant.networkpolicy.odooPorts" . | nindent 4 }}
{{- if $np.egress.smtp.enabled }}
- to:
    {{- toYaml $np.egress.smtp.to | nindent 4 }}
  ports:
    {{- range $np.egress.smtp.ports }}
    - port: {{ int . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- with $np.egress.extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}
