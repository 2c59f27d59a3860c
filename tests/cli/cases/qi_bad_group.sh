# A 4-bit group whose absmax disagrees with its quant_state (a checkpoint cut by a careless tool): refused
# with a message naming the file and tensor, exit 1, nothing written.
. "$CLIDIR/lib.sh"
TOOL=qinspect
fails_cleanly "$CLIDIR/data/bad_group.safetensors"
