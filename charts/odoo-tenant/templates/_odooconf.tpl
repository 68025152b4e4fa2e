{{/*
odoo.conf of a component ("odoo": the web pods, "cron": the dedicated cron pod), from values.
Secrets never appear here (see files/odoo-init.py).
*/}}
{{- define "odoo-tenant.odoo.conf" -}}
{{- $ctx := .context -}}
{{- $v := $ctx.Values.odoo -}}
{{- $c := $v.config -}}
{{- $db := include "odoo-tenant.database.name" $ctx -}}
{{- $forbidden := list "db_password" "admin_passwd" "smtp_password" "db_host" "db_port" "db_user" "db_name" "dbfilter" "list_db" "data_dir" "http_port" "gevent_port" "longpolling_port" -}}
{{- range $key, $_ := $c.extraOptions }}
{{- if has $key $forbidden }}
{{- fail (printf "odoo.config.extraOptions.%s is set by the chart (secrets come from Secrets, the rest from odoo.config and the database values); remove it" $key) }}
{{- end }}
{{- end -}}
[options]
; Rendered by the odoo-tenant chart from its values. The secrets (db_password, admin_passwd,
; smtp_password) are appended at pod start from Secrets, never stored here.
data_dir = /var/lib/odoo
db_host = {{ include "odoo-tenant.database.host" $ctx }}
db_port = {{ include "odoo-tenant.database.port" $ctx }}
db_user = {{ include "odoo-tenant.database.user" $ctx }}
db_name = {{ $db }}
dbfilter = ^{{ $db }}$
db_sslmode = {{ ternary "disable" $ctx.Values.externalDatabase.sslmode $ctx.Values.postgresql.enabled }}
db_maxconn = {{ int $c.dbMaxconn }}
list_db = False
proxy_mode = {{ ternary "True" "False" $c.proxyMode }}
{{- if eq .component "cron" }}
http_enable = False
max_cron_threads = {{ int $v.cron.maxCronThreads }}
{{- else }}
http_enable = True
http_port = 8069
gevent_port = 8072
max_cron_threads = {{ ternary 0 (int $c.maxCronThreads) $v.cron.dedicated }}
{{- end }}
workers = {{ int $c.workers }}
limit_memory_soft = {{ int64 $c.limitMemorySoft }}
limit_memory_hard = {{ int64 $c.limitMemoryHard }}
limit_time_cpu = {{ int $c.limitTimeCpu }}
limit_time_real = {{ int $c.limitTimeReal }}
limit_time_real_cron = {{ int $c.limitTimeRealCron }}
log_level = {{ $c.logLevel }}
{{- with $v.smtp }}
{{- if .enabled }}
smtp_server = {{ required "odoo.smtp.host is required when odoo.smtp.enabled" .host }}
smtp_port = {{ int .port }}
smtp_ssl = {{ ternary "True" "False" .ssl }}
{{- with .user }}
smtp_user = {{ . }}
{{- end }}
{{- with .from }}
email_from = {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- range $key, $value := $c.extraOptions }}
{{ $key }} = {{ if kindIs "bool" $value }}{{ ternary "True" "False" $value }}{{ else if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}{{ int64 $value }}{{ else }}{{ $value }}{{ end }}
{{- end }}
{{- end -}}
