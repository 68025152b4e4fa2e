{{/* The database Odoo connects to: the chart's PostgreSQL or an external one. */}}

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
