{{/*
Options of odoo.conf the chart owns, with the value that sets each (named in the error when
odoo.config.extraOptions tries to set one of them). Owned in every configuration, whether the
current one writes them or not, so that a values change never turns an extra option into a
duplicate. Odoo reads odoo.conf with a config parser that refuses a key given twice.
*/}}
{{- define "odoo-tenant.odooconf.owners" -}}
{{- toJson (dict
  "db_password" "a Secret (postgresql.auth.existingSecret or externalDatabase.existingSecret)"
  "admin_passwd" "a Secret (odoo.masterPassword.existingSecret)"
  "smtp_password" "a Secret (odoo.smtp.existingSecret)"
  "data_dir" "the chart (the filestore volume)"
  "db_host" "postgresql.enabled / externalDatabase.host"
  "db_port" "postgresql.enabled / externalDatabase.port"
  "db_user" "postgresql.auth.username / externalDatabase.user"
  "db_name" "postgresql.auth.database / externalDatabase.database"
  "dbfilter" "the database name (one database per tenant)"
  "db_sslmode" "externalDatabase.sslmode"
  "db_maxconn" "odoo.config.dbMaxconn"
  "list_db" "the chart (the database manager stays off)"
  "proxy_mode" "odoo.config.proxyMode"
  "http_enable" "the chart (web pods serve HTTP, the cron pod does not)"
  "http_interface" "the chart (listen on the pod's addresses)"
  "http_port" "the chart (8069, the Service's port)"
  "gevent_port" "the chart (8072, the Service's websocket port)"
  "longpolling_port" "the chart (gevent_port, 8072)"
  "max_cron_threads" "odoo.config.maxCronThreads / odoo.cron.maxCronThreads"
  "workers" "odoo.config.workers"
  "limit_memory_soft" "odoo.config.limitMemorySoft"
  "limit_memory_hard" "odoo.config.limitMemoryHard"
  "limit_time_cpu" "odoo.config.limitTimeCpu"
  "limit_time_real" "odoo.config.limitTimeReal"
  "limit_time_real_cron" "odoo.config.limitTimeRealCron"
  "log_level" "odoo.config.logLevel"
  "smtp_server" "odoo.smtp.host"
  "smtp_port" "odoo.smtp.port"
  "smtp_ssl" "odoo.smtp.ssl"
  "smtp_user" "odoo.smtp.user"
  "email_from" "odoo.smtp.from"
) -}}
{{- end -}}

{{/*
odoo.conf of a component ("odoo": the web pods, "cron": the dedicated cron pod), from values.
Secrets never appear here (see files/odoo-init.py). The chart's options and
odoo.config.extraOptions go into one map, written once per key: an extra option that the chart
owns is refused with the value to use instead (overriding it would bypass what depends on it:
the Ingress's websocket route on workers, the cron split, the connection sizing).
*/}}
{{- define "odoo-tenant.odooconf.file" -}}
{{- $ctx := .context -}}
{{- $v := $ctx.Values.odoo -}}
{{- $c := $v.config -}}
{{- $db := include "odoo-tenant.database.name" $ctx -}}
{{- $owners := include "odoo-tenant.odooconf.owners" $ctx | fromJson -}}
{{- range $key, $_ := $c.extraOptions }}
{{- if hasKey $owners $key }}
{{- fail (printf "odoo.config.extraOptions.%s: the chart sets %s from %s; set that instead and remove it from extraOptions" $key $key (get $owners $key)) }}
{{- end }}
{{- end -}}
{{- $options := dict
  "data_dir" "/var/lib/odoo"
  "db_host" (include "odoo-tenant.database.host" $ctx)
  "db_port" (include "odoo-tenant.database.port" $ctx)
  "db_user" (include "odoo-tenant.database.user" $ctx)
  "db_name" $db
  "dbfilter" (printf "^%s$" $db)
  "db_sslmode" (ternary "disable" $ctx.Values.externalDatabase.sslmode $ctx.Values.postgresql.enabled)
  "db_maxconn" (int $c.dbMaxconn)
  "list_db" "False"
  "proxy_mode" (ternary "True" "False" $c.proxyMode)
  "workers" (int $c.workers)
  "limit_memory_soft" (int64 $c.limitMemorySoft)
  "limit_memory_hard" (int64 $c.limitMemoryHard)
  "limit_time_cpu" (int $c.limitTimeCpu)
  "limit_time_real" (int $c.limitTimeReal)
  "limit_time_real_cron" (int $c.limitTimeRealCron)
  "log_level" $c.logLevel
-}}
{{- if eq .component "cron" }}
{{- $_ := set $options "http_enable" "False" }}
{{- $_ := set $options "max_cron_threads" (int $v.cron.maxCronThreads) }}
{{- else }}
{{- $_ := set $options "http_enable" "True" }}
{{- /* All the pod's addresses; Odoo 19 warns when unset (its default changes in Odoo 20). */}}
{{- $_ := set $options "http_interface" "0.0.0.0" }}
{{- $_ := set $options "http_port" 8069 }}
{{- $_ := set $options "gevent_port" 8072 }}
{{- $_ := set $options "max_cron_threads" (ternary 0 (int $c.maxCronThreads) $v.cron.dedicated) }}
{{- end }}
{{- with $v.smtp }}
{{- if .enabled }}
{{- $_ := set $options "smtp_server" (required "odoo.smtp.host is required when odoo.smtp.enabled" .host) }}
{{- $_ := set $options "smtp_port" (int .port) }}
{{- $_ := set $options "smtp_ssl" (ternary "True" "False" .ssl) }}
{{- with .user }}{{- $_ := set $options "smtp_user" . }}{{- end }}
{{- with .from }}{{- $_ := set $options "email_from" . }}{{- end }}
{{- end }}
{{- end }}
{{- range $key, $value := $c.extraOptions }}
{{- $_ := set $options $key (ternary (ternary "True" "False" (eq (toString $value) "true")) $value (kindIs "bool" $value)) }}
{{- end -}}
[options]
; Rendered by the odoo-tenant chart from its values, one line per option. The secrets
; (db_password, admin_passwd, smtp_password) are appended at pod start from Secrets, never
; stored here.
{{- range $key, $value := $options }}
{{ $key }} = {{ if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}{{ int64 $value }}{{ else }}{{ $value }}{{ end }}
{{- end }}
{{- end -}}
