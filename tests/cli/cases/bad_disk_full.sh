# A full disk, simulated with a file size limit (the tool ignores SIGXFSZ, so writes fail with EFBIG),
# for a directory and a file OUTPUT: exit 1, "cannot write", nothing left behind.
. "$CLIDIR/lib.sh"
ulimit -f 200 # 100 or 200 kB (blocks of 512 or 1024 bytes): less than the 296 kB model.safetensors
fails "$FIXTURES/models/tiny-llama" -o out.safetensors
fails_cleanly "$FIXTURES/models/tiny-llama" -o out
