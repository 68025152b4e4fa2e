{{/*
initdb arguments of a new cluster: UTF-8 with a locale that no C library update changes: the
builtin provider's C.UTF-8 (PostgreSQL 17+: code-point order, Unicode character classes),
else libc's C.UTF-8 (code-point order in glibc).
*/}}
{{- define "odoo-tenant.postgresql.initdbArgs" -}}
{{- $major := regexFind "^[0-9]+" (toString .Values.postgresql.image.tag) | default "0" | int -}}
{{- if ge $major 17 -}}
--encoding=UTF8 --locale-provider=builtin --builtin-locale=C.UTF-8 --locale=C.UTF-8
{{- else -}}
--encoding=UTF8 --locale=C.UTF-8
{{- end -}}
{{- end -}}
