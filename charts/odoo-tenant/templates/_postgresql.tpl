{{/* The chart's PostgreSQL server: initdb arguments, series of an image. */}}

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

{{/* "<major>-<Debian release>" of an image reference (`…postgres:17.8-trixie@sha256:…` ->
`17-trixie`); a tag without a release (`17`) gives `17-`, which matches no full tag. */}}
{{- define "odoo-tenant.postgresql.series" -}}
{{- $tag := regexReplaceAll "@.*$" . "" | regexFind "[^:/]+$" -}}
{{- printf "%s-%s" (regexFind "^[0-9]+" $tag) (regexFind "[a-z]+$" $tag) -}}
{{- end -}}
