/* rcp_approx_table.S: the compressed reciprocal table (see rcp_approx.c), linked into the library as
 * read-only data. The path is relative to the top of the source tree, where the Makefile runs. */
	.section .rodata
	.globl	lq_rcp_delta_zst
	.type	lq_rcp_delta_zst, @object
	.balign	16
lq_rcp_delta_zst:
	.incbin	"libquant/data/rcp_approx_delta.bin.zst"
lq_rcp_delta_zst_end:
	.size	lq_rcp_delta_zst, lq_rcp_delta_zst_end - lq_rcp_delta_zst
	.globl	lq_rcp_delta_zst_size
	.type	lq_rcp_delta_zst_size, @object
	.balign	8
lq_rcp_delta_zst_size:
	.quad	lq_rcp_delta_zst_end - lq_rcp_delta_zst
	.size	lq_rcp_delta_zst_size, 8
	.section .note.GNU-stack,"",@progbits
