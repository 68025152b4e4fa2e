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

{{/*
Resources of the PostgreSQL container: postgresql.resources with the size of its /dev/shm
(postgresql.sharedMemory.sizeLimit, a memory-backed emptyDir) added to the memory limit, since
tmpfs pages are charged to the container's memory cgroup: PostgreSQL keeps the limit the plan
gives it for itself, and the ResourceQuota (odoo-tenant.budget.checkQuota) counts the sum.
Returns YAML.
*/}}
{{- define "odoo-tenant.postgresql.resources" -}}
{{- $res := deepCopy (.Values.postgresql.resources | default dict) -}}
{{- $limit := dig "limits" "memory" "" $res -}}
{{- if $limit -}}
{{- $bytes := addf (include "odoo-tenant.budget.quantity" $limit | float64) (include "odoo-tenant.budget.quantity" .Values.postgresql.sharedMemory.sizeLimit | float64) -}}
{{- $_ := set $res.limits "memory" (printf "%.0fMi" (ceil (divf $bytes 1048576.0))) -}}
{{- end -}}
{{- toYaml $res -}}
{{- end -}}
