{{/* The database Odoo connects to (the chart's PostgreSQL or an external one), and the connections its pods open. */}}

{{- define "odoo-tenant.database.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "odoo-tenant.names.postgresqlClients" . -}}
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
{{- include "odoo-tenant.names.postgresqlSecret" . -}}
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
- name: PGCONNECT_TIMEOUT
  # Seconds a connection attempt may take: a dropped SYN (a proxy that drops rather than
  # rejects while a Service has no endpoint) fails it instead of hanging; clients retry.
  value: "10"
- name: PGSSLMODE
  value: {{ ternary "disable" .Values.externalDatabase.sslmode .Values.postgresql.enabled | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "odoo-tenant.database.secretName" . }}
      key: {{ include "odoo-tenant.database.secretKey" . }}
{{- end -}}

{{/*
Connections the tenant's pods can open at once, each Odoo process with a pool of db_maxconn:
a web pod runs the HTTP workers, the cron workers (unless dedicated), the gevent process and
the main process (threaded, workers = 0: one process); web pods are counted once more during a
RollingUpdate; the cron pod runs its cron workers and the main process. Plus 5 for the backup
or restore Job and the init step, and PostgreSQL's 3 reserved superuser slots.
*/}}
{{- define "odoo-tenant.database.connectionsNeeded" -}}
{{- $n := include "odoo-tenant.database.connectionsParts" . | fromJson -}}
{{- add (mul (int $n.webPods) (int $n.perWeb) (int $n.maxconn)) (mul (int $n.cronProcesses) (int $n.maxconn)) 5 3 -}}
{{- end -}}

{{- define "odoo-tenant.database.connectionsWhy" -}}
{{- $n := include "odoo-tenant.database.connectionsParts" . | fromJson -}}
{{- printf "%d web pod(s) x %d process(es) + %d cron process(es), each with db_maxconn=%d, + 8 for jobs and reserved slots" (int $n.webPods) (int $n.perWeb) (int $n.cronProcesses) (int $n.maxconn) -}}
{{- end -}}

{{- define "odoo-tenant.database.connectionsParts" -}}
{{- $v := .Values.odoo -}}
{{- $workers := int $v.config.workers -}}
{{- $replicas := max 1 (int $v.replicas) -}}
{{- if not (include "odoo-tenant.odoo.filestoreRwo" .) -}}{{- $replicas = add1 $replicas -}}{{- end -}}
{{- $cronThreads := ternary 0 (int $v.config.maxCronThreads) $v.cron.dedicated -}}
{{- $perWeb := 1 -}}
{{- if gt $workers 0 -}}{{- $perWeb = add $workers $cronThreads 2 -}}{{- end -}}
{{- $cron := 0 -}}
{{- if $v.cron.dedicated -}}{{- $cron = add (int $v.cron.maxCronThreads) 1 -}}{{- end -}}
{{- toJson (dict "webPods" $replicas "perWeb" $perWeb "cronProcesses" $cron "maxconn" (int $v.config.dbMaxconn)) -}}
{{- end -}}
