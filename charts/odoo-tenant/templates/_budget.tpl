{{/*
What the release's own pods need at once, to check the ResourceQuota against it (a quota too
small for them makes the API server refuse pods: the Deployment then stays unavailable and
`helm --wait` times out without a clear reason).

A pod needs, for each resource, max(largest init container, sum of containers); PostgreSQL's
memory limit includes its memory-backed /dev/shm (odoo-tenant.postgresql.resources). At once may
run: the web pods (+1 during a RollingUpdate), the cron pod, PostgreSQL, one backup Job pod
(concurrencyPolicy Forbid) and the `helm test` Job pod.
*/}}

{{/* A quantity ("250m", "2", "1.5Gi", 512) as a float: cores or bytes. */}}
{{- define "odoo-tenant.budget.quantity" -}}
{{- $s := toString . | trim -}}
{{- $number := regexFind "^[0-9]*\\.?[0-9]+" $s -}}
{{- if not $number -}}
{{- fail (printf "cannot read the quantity %q" $s) -}}
{{- end -}}
{{- $suffix := trimPrefix $number $s -}}
{{- $units := dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- if not (hasKey $units $suffix) -}}
{{- fail (printf "cannot read the quantity %q (unit %q)" $s $suffix) -}}
{{- end -}}
{{- mulf (float64 $number) (get $units $suffix) -}}
{{- end -}}

{{/*
Resources one pod needs. Usage: include "odoo-tenant.budget.podNeed" (dict "init" $res "containers" (list $res ...))
Returns JSON {"requests.cpu": x, "requests.memory": x, "limits.cpu": x, "limits.memory": x}.
*/}}
{{- define "odoo-tenant.budget.podNeed" -}}
{{- $need := dict -}}
{{- range $kind := list "requests" "limits" -}}
{{- range $res := list "cpu" "memory" -}}
{{- $sum := 0.0 -}}
{{- range $c := $.containers -}}
{{- $q := dig $kind $res "0" ($c | default dict) -}}
{{- $sum = addf $sum (include "odoo-tenant.budget.quantity" $q | float64) -}}
{{- end -}}
{{- $init := 0.0 -}}
{{- if $.init -}}
{{- $init = include "odoo-tenant.budget.quantity" (dig $kind $res "0" $.init) | float64 -}}
{{- end -}}
{{- $_ := set $need (printf "%s.%s" $kind $res) (maxf $sum $init) -}}
{{- end -}}
{{- end -}}
{{- toJson $need -}}
{{- end -}}

{{/* JSON of the pods (name, count, need) the release may run at once. */}}
{{- define "odoo-tenant.budget.pods" -}}
{{- $v := .Values -}}
{{- $replicas := int $v.odoo.replicas -}}
{{- $pods := list -}}
{{- $web := $replicas -}}
{{- if and (gt $replicas 0) (not (include "odoo-tenant.odoo.filestoreRwo" .)) -}}
{{- $web = add1 $replicas -}}
{{- end -}}
{{- $pods = append $pods (dict "name" "odoo" "count" $web "need" (include "odoo-tenant.budget.podNeed" (dict "init" $v.odoo.dbInit.resources "containers" (list $v.odoo.resources)) | fromJson)) -}}
{{- if and $v.odoo.cron.dedicated (gt $replicas 0) -}}
{{- $pods = append $pods (dict "name" "cron" "count" 1 "need" (include "odoo-tenant.budget.podNeed" (dict "init" $v.odoo.dbInit.resources "containers" (list $v.odoo.cron.resources)) | fromJson)) -}}
{{- end -}}
{{- if $v.postgresql.enabled -}}
{{- $pods = append $pods (dict "name" "postgresql" "count" 1 "need" (include "odoo-tenant.budget.podNeed" (dict "containers" (list (include "odoo-tenant.postgresql.resources" . | fromYaml))) | fromJson)) -}}
{{- end -}}
{{- if $v.backup.enabled -}}
{{- $pods = append $pods (dict "name" "backup" "count" 1 "need" (include "odoo-tenant.budget.podNeed" (dict "init" $v.backup.resources "containers" (list $v.backup.resources)) | fromJson)) -}}
{{- end -}}
{{- $pods = append $pods (dict "name" "test" "count" 1 "need" (include "odoo-tenant.budget.podNeed" (dict "containers" (list $v.tests.resources)) | fromJson)) -}}
{{- toJson $pods -}}
{{- end -}}

{{/* Storage the release's PVCs request, in bytes, and their number. */}}
{{- define "odoo-tenant.budget.storageNeed" -}}
{{- $v := .Values -}}
{{- $bytes := 0.0 -}}
{{- $claims := 0 -}}
{{- if not $v.odoo.persistence.existingClaim -}}
{{- $bytes = addf $bytes (include "odoo-tenant.budget.quantity" $v.odoo.persistence.size | float64) -}}
{{- $claims = add1 $claims -}}
{{- end -}}
{{- if $v.postgresql.enabled -}}
{{- $bytes = addf $bytes (include "odoo-tenant.budget.quantity" $v.postgresql.persistence.size | float64) -}}
{{- $claims = add1 $claims -}}
{{- end -}}
{{- if include "odoo-tenant.backup.claimed" . -}}
{{- $bytes = addf $bytes (include "odoo-tenant.budget.quantity" $v.backup.persistence.size | float64) -}}
{{- $claims = add1 $claims -}}
{{- end -}}
{{- toJson (dict "requests.storage" $bytes "persistentvolumeclaims" $claims) -}}
{{- end -}}

{{/* Fails with a readable message if quota.hard is below what the release needs. */}}
{{- define "odoo-tenant.budget.checkQuota" -}}
{{- $pods := include "odoo-tenant.budget.pods" . | fromJsonArray -}}
{{- $need := include "odoo-tenant.budget.storageNeed" . | fromJson -}}
{{- $count := 0 -}}
{{- range $pod := $pods -}}
{{- $count = add $count (int $pod.count) -}}
{{- range $key, $value := $pod.need -}}
{{- $_ := set $need $key (addf (get $need $key | default 0.0) (mulf $value (float64 $pod.count))) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $need "pods" $count -}}
{{- $problems := list -}}
{{- range $key := list "requests.cpu" "limits.cpu" "requests.memory" "limits.memory" "requests.storage" "pods" "persistentvolumeclaims" -}}
{{- if hasKey $.Values.quota.hard $key -}}
{{- $hard := include "odoo-tenant.budget.quantity" (get $.Values.quota.hard $key) | float64 -}}
{{- $want := get $need $key | float64 -}}
{{- if gt $want (addf $hard 0.0005) -}}
{{- $shown := "" -}}
{{- if hasSuffix "cpu" $key -}}
{{- $shown = printf "%.0fm" (mulf $want 1000.0) -}}
{{- else if or (hasSuffix "memory" $key) (hasSuffix "storage" $key) -}}
{{- $shown = printf "%.0fMi" (ceil (divf $want 1048576.0)) -}}
{{- else -}}
{{- $shown = printf "%.0f" $want -}}
{{- end -}}
{{- $problems = append $problems (printf "quota.hard.%s=%v is below the %s the release's pods and volumes need at once" $key (get $.Values.quota.hard $key) $shown) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "%s (pods: web, cron, postgresql, backup and helm test, init containers included); raise the quota or lower the resources" (join "; " $problems)) -}}
{{- end -}}
{{- end -}}

{{/* Fails if a container of the chart has limits above limitRange.max (its pod would be refused). */}}
{{- define "odoo-tenant.budget.checkLimitRange" -}}
{{- $v := .Values -}}
{{- $containers := dict "odoo.resources" $v.odoo.resources "odoo.dbInit.resources" $v.odoo.dbInit.resources "tests.resources" $v.tests.resources -}}
{{- if $v.odoo.cron.dedicated -}}{{- $_ := set $containers "odoo.cron.resources" $v.odoo.cron.resources -}}{{- end -}}
{{- if $v.postgresql.enabled -}}{{- $_ := set $containers "postgresql.resources (+ sharedMemory.sizeLimit)" (include "odoo-tenant.postgresql.resources" . | fromYaml) -}}{{- end -}}
{{- if $v.backup.enabled -}}{{- $_ := set $containers "backup.resources" $v.backup.resources -}}{{- end -}}
{{- range $res, $max := $v.limitRange.max -}}
{{- range $where, $resources := $containers -}}
{{- $limit := dig "limits" $res "0" $resources -}}
{{- if gt (include "odoo-tenant.budget.quantity" $limit | float64) (include "odoo-tenant.budget.quantity" $max | float64) -}}
{{- fail (printf "%s.limits.%s=%v is above limitRange.max.%s=%v: the pod would be refused" $where $res $limit $res $max) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
