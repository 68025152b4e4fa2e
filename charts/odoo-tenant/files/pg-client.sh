#!/bin/sh
# Init container `pg-client` of the backup, restore and verify Jobs (odoo-tenant chart), run in
# the PostgreSQL image of the server's major: copies this image's pg_dump and psql, every shared
# library they load and the dynamic loader into DEST, with wrappers DEST/bin/pg_dump and
# DEST/bin/psql that start them through that loader. The backup container (the Odoo image) then
# runs the server's own client, whatever its own C library and client version.
# Usage: pg-client.sh DEST
set -eu

dest=${1:?usage: pg-client.sh DEST}
mkdir -p "$dest/bin" "$dest/lib" "$dest/libexec"

# The program itself, not a wrapper: Debian's /usr/bin/pg_dump is postgresql-common's perl
# pg_wrapper (first on the official image's PATH), the binaries are in
# /usr/lib/postgresql/$PG_MAJOR/bin; Alpine's are ELF files on PATH.
find_binary() {
	old_ifs=$IFS
	IFS=:
	for dir in ${PG_MAJOR:+/usr/lib/postgresql/$PG_MAJOR/bin} $PATH; do
		if [ -f "$dir/$1" ]; then
			real=$(readlink -f "$dir/$1")
			if [ "$(head -c 4 "$real" | tail -c 3)" = ELF ]; then
				IFS=$old_ifs
				echo "$real"
				return 0
			fi
		fi
	done
	IFS=$old_ifs
	return 1
}

loader=""
for prog in pg_dump psql; do
	real=$(find_binary "$prog") || { echo "pg-client: no $prog program in this image" >&2; exit 1; }
	cp "$real" "$dest/libexec/$prog"
	# ldd lines: "libpq.so.5 => /usr/lib/.../libpq.so.5 (0x...)" and "/lib64/ld-linux-....so.2 (0x...)"
	ldd "$real" >"$dest/ldd.txt"
	while read -r first arrow target _; do
		if [ "$arrow" = "=>" ] && [ -f "$target" ]; then
			cp -L "$target" "$dest/lib/"
			case $(basename "$target") in ld-linux*.so* | ld-musl*.so*) loader=$(basename "$target") ;; esac
		elif [ "${first#/}" != "$first" ] && [ -f "$first" ]; then
			loader=$(basename "$first")
			cp -L "$first" "$dest/lib/$loader"
		fi
	done <"$dest/ldd.txt"
	rm -f "$dest/ldd.txt"
done
[ -n "$loader" ] || { echo "pg-client: no dynamic loader found for $prog" >&2; exit 1; }
for prog in pg_dump psql; do
	cat >"$dest/bin/$prog" <<EOF
#!/bin/sh
here=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$here/lib/$loader" --library-path "\$here/lib" "\$here/libexec/$prog" "\$@"
EOF
	chmod 0755 "$dest/bin/$prog"
done
"$dest/bin/pg_dump" --version
