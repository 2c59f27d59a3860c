# A tensor held by two shards: exit 1, the tensor and both shards named, nothing written.
. "$CLIDIR/lib.sh"
fails_cleanly "$DATA/two_shards" -o out
