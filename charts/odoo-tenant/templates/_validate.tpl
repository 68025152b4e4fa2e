{{/*
Checks across values that the schema cannot express, with messages that say what to change.
Included first by the templates whose rendering depends on them.
*/}}
{{- define "odoo-tenant.validate.values" -}}
{{- $v := .Values -}}
{{- $full := include "odoo-tenant.names.fullname" . -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $full) -}}
{{- fail (printf "the release name %q gives the object names \"%s-...\": the chart's Services need DNS-1035 labels (a lowercase letter first, then lowercase letters, digits and '-'); choose a release name starting with a letter, or set fullnameOverride" .Release.Name $full) -}}
{{- end -}}
{{- range $where, $map := dict "commonLabels" $v.commonLabels "odoo.podLabels" $v.odoo.podLabels -}}
{{- range $key, $_ := $map -}}
{{- if regexMatch "^(app\\.kubernetes\\.io/|helm\\.sh/|saasodoo\\.dev/tenant$)" $key -}}
{{- fail (printf "%s.%s: the chart sets this label itself; choose another key" $where $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $where, $map := dict "odoo.config.extraOptions" $v.odoo.config.extraOptions "postgresql.parameters" $v.postgresql.parameters -}}
{{- range $key, $value := $map -}}
{{- if not (regexMatch "^[a-z_][a-z0-9_.]*$" $key) -}}
{{- fail (printf "%s: %q is not an option name (lowercase letters, digits, _ and .)" $where $key) -}}
{{- end -}}
{{- if regexMatch "[\r\n]" (toString $value) -}}
{{- fail (printf "%s.%s: the value must be a single line" $where $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq (int $v.odoo.config.workers) 1 -}}
{{- fail "odoo.config.workers=1: Odoo prints no PDF report with a single HTTP worker (its web client refuses: \"You need to start Odoo with at least two workers\"; wkhtmltopdf fetches the report's assets from the same server while that worker waits for it: odoo/odoo#199880); use 0 (threaded) or 2 or more" -}}
{{- end -}}
{{- $replicas := int $v.odoo.replicas -}}
{{- if and (gt $replicas 1) (include "odoo-tenant.odoo.filestoreRwo" .) -}}
{{- fail (printf "odoo.replicas=%d needs a filestore every pod can mount: set odoo.persistence.accessModes to [ReadWriteMany] (with a StorageClass that supports it), or keep odoo.replicas at 1" $replicas) -}}
{{- end -}}
{{- if not $v.postgresql.enabled -}}
{{- if not $v.externalDatabase.host -}}
{{- fail "externalDatabase.host is required when postgresql.enabled is false" -}}
{{- end -}}
{{- if not $v.externalDatabase.existingSecret -}}
{{- fail "externalDatabase.existingSecret is required when postgresql.enabled is false (a Secret with the password of externalDatabase.user)" -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.egress.externalDatabase.enabled) -}}
{{- fail "postgresql.enabled=false: Odoo must reach externalDatabase.host through the NetworkPolicies; set networkPolicy.egress.externalDatabase.enabled=true (and networkPolicy.egress.externalDatabase.to to the server's ipBlock or namespace), or networkPolicy.enabled=false" -}}
{{- end -}}
{{- end -}}
{{- $need := include "odoo-tenant.database.connectionsNeeded" . | int -}}
{{- if $v.postgresql.enabled -}}
{{- with $v.postgresql.parameters.max_connections -}}
{{- if lt (int .) $need -}}
{{- fail (printf "postgresql.parameters.max_connections=%v is below the %d connections the tenant's pods can open at once (%s); raise it, or lower odoo.config.dbMaxconn or the workers" . $need (include "odoo-tenant.database.connectionsWhy" $)) -}}
{{- end -}}
{{- end -}}
{{- else if and (gt (int $v.externalDatabase.maxConnections) 0) (gt $need (int $v.externalDatabase.maxConnections)) -}}
{{- fail (printf "externalDatabase.maxConnections=%d is below the %d connections the tenant's pods can open at once (%s); lower odoo.config.dbMaxconn or the workers, or give the tenant more of the server" (int $v.externalDatabase.maxConnections) $need (include "odoo-tenant.database.connectionsWhy" $)) -}}
{{- end -}}
{{- $hard := int64 $v.odoo.config.limitMemoryHard -}}
{{- if ge (int64 $v.odoo.config.limitMemorySoft) $hard -}}
{{- fail (printf "odoo.config.limitMemorySoft=%d must be below odoo.config.limitMemoryHard=%d (a worker is recycled at the soft limit, its request killed at the hard one)" (int64 $v.odoo.config.limitMemorySoft) $hard) -}}
{{- end -}}
{{- $containers := dict "odoo.resources" $v.odoo.resources -}}
{{- if $v.odoo.cron.dedicated -}}{{- $_ := set $containers "odoo.cron.resources" $v.odoo.cron.resources -}}{{- end -}}
{{- range $where, $res := $containers -}}
{{- $limit := dig "limits" "memory" "" $res -}}
{{- if and $limit (lt (include "odoo-tenant.budget.quantity" $limit | float64) (float64 $hard)) -}}
{{- fail (printf "%s.limits.memory=%v is below odoo.config.limitMemoryHard=%d (%d MiB): one worker at its limit would get the whole pod killed; raise the memory limit or lower limitMemoryHard" $where $limit $hard (div $hard 1048576)) -}}
{{- end -}}
{{- end -}}
{{- if and $v.postgresql.enabled (not $v.postgresql.image.digest) (not (regexMatch "^[0-9]+\\.[0-9]+" (toString $v.postgresql.image.tag))) -}}
{{- fail (printf "postgresql.image.tag=%v is not a full version (e.g. 17.8-trixie): a bare major moves to new builds and Debian releases, with another C library; give the full version or postgresql.image.digest" $v.postgresql.image.tag) -}}
{{- end -}}
{{- if and $v.odoo.smtp.enabled (not $v.odoo.smtp.host) -}}
{{- fail "odoo.smtp.host is required when odoo.smtp.enabled is true" -}}
{{- end -}}
{{- if and $v.odoo.smtp.enabled $v.odoo.smtp.user (not $v.odoo.smtp.existingSecret) -}}
{{- fail "odoo.smtp.existingSecret is required when odoo.smtp.user is set (a Secret with the SMTP password)" -}}
{{- end -}}
{{- if and $v.tenant.copyOf $v.odoo.smtp.enabled -}}
{{- fail (printf "odoo.smtp.enabled must be false: this tenant is a staging copy of %s (tenant.copyOf), and a copy sends no mail" $v.tenant.copyOf) -}}
{{- end -}}
{{- if and $v.tenant.copyOf $v.networkPolicy.egress.smtp.enabled -}}
{{- fail (printf "networkPolicy.egress.smtp.enabled must be false: this tenant is a staging copy of %s (tenant.copyOf), and a copy sends no mail" $v.tenant.copyOf) -}}
{{- end -}}
{{- end -}}


{{/*
A change of the running PostgreSQL's major or Debian release on an upgrade, refused unless
postgresql.upgradeFrom names the running image (values.yaml explains why). `lookup` reads the
live StatefulSet; it returns nothing under `helm template` and client-side dry runs, where
there is nothing running to protect.
*/}}
{{- define "odoo-tenant.validate.postgresqlImageChange" -}}
{{- $v := .Values.postgresql -}}
{{- if and $v.enabled .Release.IsUpgrade -}}
{{- $sts := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "odoo-tenant.names.postgresql" .) -}}
{{- $running := "" -}}
{{- if $sts -}}
{{- range $sts.spec.template.spec.containers -}}
{{- if eq .name "postgresql" -}}{{- $running = .image -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $new := include "odoo-tenant.images.postgresql" . -}}
{{- if and $running (ne $running $new) (ne $v.upgradeFrom $running) -}}
{{- $was := include "odoo-tenant.postgresql.series" $running -}}
{{- $next := include "odoo-tenant.postgresql.series" $new -}}
{{- if ne $was $next -}}
{{- fail (printf "postgresql.image: the tenant's PostgreSQL runs %s; %s is another PostgreSQL major or Debian release (%s -> %s). Follow the chart README's \"PostgreSQL image upgrades\", then confirm with postgresql.upgradeFrom=%s" $running $new ($was | default "unknown") $next $running) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}


{{/*
The Odoo series of the release's database: the ConfigMap "<fullname>-odoo-series" written at
the first install (kept on uninstall with the data), else, on an upgrade of a release from
before it, the series of the image the Odoo Deployment runs. `lookup` reads them; it returns
nothing under `helm template` and client-side dry runs. Empty: unknown (a new database).
*/}}
{{- define "odoo-tenant.validate.recordedOdooSeries" -}}
{{- $cm := lookup "v1" "ConfigMap" .Release.Namespace (include "odoo-tenant.names.odooSeries" .) -}}
{{- if $cm -}}
{{- dig "data" "series" "" $cm -}}
{{- else if .Release.IsUpgrade -}}
{{- $deploy := lookup "apps/v1" "Deployment" .Release.Namespace (include "odoo-tenant.names.odoo" .) -}}
{{- if $deploy -}}
{{- range $deploy.spec.template.spec.containers -}}
{{- if eq .name "odoo" -}}{{- include "odoo-tenant.images.seriesOfRef" .image -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
An image of another Odoo series than the release's database, refused: Odoo does not migrate a
database to another major when it starts (odoo/modules/loading.py loads the installed modules as
they are without -u; majors need Odoo's upgrade service or OpenUpgrade), so Odoo would run on a
schema of another series and fail on signed-in pages while /web/health answers 200.
*/}}
{{- define "odoo-tenant.validate.odooSeries" -}}
{{- $new := include "odoo-tenant.images.odooSeries" . -}}
{{- $was := include "odoo-tenant.validate.recordedOdooSeries" . -}}
{{- if and $was $new (ne $was $new) -}}
{{- fail (printf "odoo.version/odoo.image.tag: this release's database is Odoo %s (ConfigMap %s); %s is Odoo %s. Odoo does not migrate a database to another major series when it starts. To move to %s: take a backup of the database (a zip in Odoo's format), upgrade it with Odoo's upgrade service (https://upgrade.odoo.com) or OpenUpgrade, and restore it into a new release installed with odoo.version=%s" $was (include "odoo-tenant.names.odooSeries" .) (include "odoo-tenant.images.odoo" .) $new $new $new) -}}
{{- end -}}
{{- end -}}
