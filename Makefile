# Makefile of the quantization toolchain: libquant, formats, the tools, tests and documentation.
# `make help` lists the targets. Variables: PREFIX, DESTDIR, CC, CFLAGS, V=1 (show commands),
# WERROR=1 (warnings are errors), SANITIZE=address,undefined.

.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := all

version_part = $(shell sed -n 's/^\#define LQ_VERSION_$(1) \([0-9]*\)$$/\1/p' libquant/include/libquant.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/libquant
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wshadow -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	-Wvla -Wformat=2 -Wwrite-strings
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
# C11, POSIX and GNU interfaces (pread, posix_fallocate, getopt_long); float arithmetic exactly as
# written: no contraction into fused multiply-adds, which would change results.
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -ffp-contract=off -fPIC -pthread $(WARNINGS)
BASE_CPPFLAGS := -Ilibquant/include -MMD -MP
# LAPACK (Debian's liblapack-dev) for the truncated SVD of loramerge --combine's *_svd types (libquant/svd.c).
LAPACK_LIBS := -llapack -lblas
LDLIBS := -lcjson -larchive -lxxhash -lzstd $(LAPACK_LIBS) -lm -lpthread
ifdef SANITIZE
# GCC's `undefined` leaves out float-cast-overflow (a JSON number beyond int64_t converted to one): with
# `undefined`, it is asked for too, as clang's fuzzing builds have it.
SANITIZE_ALL := $(SANITIZE)$(if $(findstring undefined,$(SANITIZE)),$(shell printf ,)float-cast-overflow)
BASE_CFLAGS += -fsanitize=$(SANITIZE_ALL) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE_ALL)
endif
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)
ALL_CPPFLAGS = $(BASE_CPPFLAGS) $(CPPFLAGS)


ifeq ($(V),1)
Q :=
else
Q := @
endif

B := build

# The CUDA backend is built when nvcc is there (HAVE_CUDA=0 leaves it out on any machine): kernels for
# sm_80 and sm_90 plus PTX for later GPUs, the CUDA runtime linked statically. cuSOLVER (the SVDs of
# loramerge --combine and loraextract on a GPU) is not linked: it is loaded with dlopen (-ldl) when an SVD
# runs (kernels/cusolver_loader.cu), so that the programs need no CUDA toolkit library to start.
NVCC ?= nvcc
ifndef HAVE_CUDA
HAVE_CUDA := $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1 || echo 0)
endif
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC) 2>/dev/null)))
NVCC_FLAGS := -O3 -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90 -Xcompiler -fPIC,-Wall,-Wextra
ifeq ($(HAVE_CUDA),1)
KERNEL_SRC := $(filter-out kernels/rcp_approx_gen.cu,$(sort $(wildcard kernels/*.cu)))
KERNEL_OBJ := $(KERNEL_SRC:%.cu=$(B)/%.o)
CUDA_CPPFLAGS := -DLQ_HAVE_CUDA -Ikernels
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
else
KERNEL_OBJ :=
CUDA_CPPFLAGS :=
CUDA_LIBS :=
endif
LDLIBS += $(CUDA_LIBS)

# backend_cuda.c is the CUDA backend: built with the kernels only
# libquant's objects see its internal headers, and export nothing but what libquant.h declares (LQ_API).
LIBQUANT_FLAGS := -DLQ_BUILDING -Ilibquant -fvisibility=hidden
LIBQUANT_SRC := $(sort $(filter-out $(if $(filter 1,$(HAVE_CUDA)),,libquant/backend_cuda.c),$(wildcard libquant/*.c)))
LIBQUANT_OBJ = $(LIBQUANT_SRC:%.c=$(B)/%.o) $(B)/libquant/rcp_approx_table.o $(KERNEL_OBJ)
FORMATS_SRC := $(sort $(wildcard formats/*.c))
FORMATS_OBJ := $(FORMATS_SRC:%.c=$(B)/%.o)
TOOLS := nf4quant loramerge qinspect loraextract
TOOL_BINS := $(TOOLS:%=$(B)/%)
CLI_OBJ := $(B)/tools/cli.o $(B)/tools/run.o $(B)/tools/fidelity.o $(B)/tools/report_file.o
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o)
MANPAGES := $(sort $(wildcard man/*.[1-9]))
# The fuzz targets, tests/fuzz/fuzz_TARGET.c: each has a corpus, tests/fuzz/corpus/TARGET, that `make check`
# replays, and a fuzzing session, `make fuzz FUZZ_TARGET=TARGET`.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

# ---------------------------------------------------------------------------------------- build
.PHONY: all
all: $(B)/libquant.a $(B)/libquant.so $(B)/libquant.pc $(TOOL_BINS)

# libquant is built with LQ_BUILDING so its internal headers compile; others never see them.
$(B)/libquant/%.o: libquant/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CPPFLAGS) $(LIBQUANT_FLAGS) $(ALL_CFLAGS) -c $< -o $@

# The one file that knows which GPU backends a build has, and the CUDA backend over the kernels.
$(B)/libquant/backend.o $(B)/libquant/backend_cuda.o: $(B)/libquant/%.o: libquant/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CPPFLAGS) $(LIBQUANT_FLAGS) $(CUDA_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/kernels/%.o: kernels/%.cu
	@mkdir -p $(@D)
	@echo "  NVCC    $<"
	$(Q)$(NVCC) $(NVCC_FLAGS) -Ilibquant/include -Ilibquant -Ikernels -DLQ_BUILDING -Xcompiler -fvisibility=hidden -MMD -MP -c $< -o $@

# The element-wise loops over whole tensors (dtype.c's conversions, fidelity.c's sums in lanes): vectorized
# for the baseline instruction set, which -O2's cheapest cost model leaves scalar. No result changes: the
# loops are element-wise or keep their lanes, nothing is reassociated.
$(B)/libquant/dtype.o $(B)/libquant/fidelity.o: ALL_CFLAGS += -ftree-vectorize -fvect-cost-model=dynamic
# fidelity.c's AVX-512 clones widen eight float32 lanes to eight doubles in one register (a tuning choice
# only: the same operations, the same bits)
$(B)/libquant/fidelity.o: ALL_CFLAGS += -mprefer-vector-width=512

# The AVX2 kernels (libquant/*_avx2.c): compiled for AVX2 and what else each uses, called only when the
# CPU has all of it (cpu_kernels.c): AVX2_FLAGS_NAME for NAME_avx2.c.
comma := ,
AVX2_FLAGS_quant4 := -mf16c
AVX2_FLAGS_merge := -mfma
$(B)/libquant/%_avx2.o: libquant/%_avx2.c
	@mkdir -p $(@D)
	@echo "  CC      $< (avx2$(patsubst -m%,$(comma) %,$(AVX2_FLAGS_$*)))"
	$(Q)$(CC) $(ALL_CPPFLAGS) $(LIBQUANT_FLAGS) $(ALL_CFLAGS) -mavx2 $(AVX2_FLAGS_$*) -c $< -o $@

# The AVX-512 kernels (libquant/*_avx512.c): one set of flags for all, what cpu_kernels.c checks at run
# time before it calls them.
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
$(B)/libquant/%_avx512.o: libquant/%_avx512.c
	@mkdir -p $(@D)
	@echo "  CC      $< (avx512)"
	$(Q)$(CC) $(ALL_CPPFLAGS) $(LIBQUANT_FLAGS) $(ALL_CFLAGS) $(AVX512_FLAGS) -c $< -o $@

# The reciprocal table is linked in as data; .incbin paths are relative to the top directory.
$(B)/libquant/rcp_approx_table.o: libquant/rcp_approx_table.S libquant/data/rcp_approx_delta.bin.zst
	@mkdir -p $(@D)
	@echo "  AS      $<"
	$(Q)$(CC) -c $< -o $@

$(B)/formats/%.o: formats/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CPPFLAGS) -Iformats $(ALL_CFLAGS) -c $< -o $@

$(B)/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CPPFLAGS) -Iformats -Itools $(ALL_CFLAGS) -c $< -o $@

$(B)/libquant.a: $(LIBQUANT_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/libquant.so: $(LIBQUANT_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,libquant.so.$(VERSION_MAJOR) $(LDFLAGS) -pthread -o $@ $^ -lzstd $(LAPACK_LIBS) -lm $(CUDA_LIBS)

$(B)/libformats.a: $(FORMATS_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/libquant.pc: libquant/libquant.pc.in libquant/include/libquant.h
	@echo "  GEN     $@"
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@

# the merge's plan, loramerge's and qinspect --adapter's
$(B)/loramerge $(B)/qinspect: $(B)/tools/merge_plan.o $(B)/tools/device_work.o
# nf4quant -d
$(B)/nf4quant: $(B)/tools/nf4quant_deq.o
# qinspect's writers
$(B)/qinspect: $(B)/tools/qinspect_report.o $(B)/tools/qinspect_text.o $(B)/tools/qinspect_json.o \
	$(B)/tools/qinspect_html.o $(B)/tools/qinspect_verify.o $(B)/tools/qinspect_adapter.o \
	$(B)/tools/qinspect_adapter_write.o $(B)/tools/qinspect_adapter_html.o
# loramerge --combine (PEFT's add_weighted_adapter)
$(B)/loramerge: $(B)/tools/lora_combine.o $(B)/tools/adapter_out.o
# loraextract's adapter writer
$(B)/loraextract: $(B)/tools/lx_write.o $(B)/tools/lx_error.o $(B)/tools/adapter_out.o
# The tools link the static libraries: nothing to find at run time but the system's. The objects go
# before the archives, those of another rule (qinspect's writers) included, so that the linker takes from
# an archive what any of them needs.
$(TOOL_BINS): $(B)/%: $(B)/tools/%.o $(CLI_OBJ) $(B)/libformats.a $(B)/libquant.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)

# ---------------------------------------------------------------------------------------- tests
$(B)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CPPFLAGS) -DLQ_BUILDING -Ilibquant -Iformats -Itools -Itests/unit $(ALL_CFLAGS) -c $< -o $@

$(B)/test_unit: $(UNIT_OBJ) $(B)/libformats.a $(B)/libquant.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/stcmp: $(B)/tests/tools/stcmp.o $(B)/libformats.a $(B)/libquant.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A fuzz target's replay of its corpus in `make check` (tests/fuzz/replay.c), for every target; a target's
# FUZZ_EXTRA_TARGET (link options, below) applies to its replay as to its fuzzing session.
$(B)/fuzz_replay_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/replay.o $(B)/libformats.a $(B)/libquant.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(FUZZ_EXTRA_$*) -o $@ $^ $(LDLIBS)
# their objects are kept, not removed as intermediate files of this rule
.SECONDARY: $(FUZZ_TARGETS:%=$(B)/tests/fuzz/fuzz_%.o) $(B)/tests/fuzz/replay.o

# a made-up qinspect report for the browser test (tests/html)
$(B)/sample_report: $(B)/tests/html/sample_report.o $(B)/tools/qinspect_html.o $(B)/tools/qinspect_report.o \
	$(B)/tools/cli.o $(B)/libformats.a $(B)/libquant.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/gen_model $(B)/gen_stream $(B)/bench_kernels: $(B)/%: $(B)/tests/bench/%.o $(B)/libformats.a $(B)/libquant.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/torch_mean_driver: tests/gpu/torch_mean_driver.c libquant/torch_mean.c libquant/torch_mean.h
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CPPFLAGS) -DLQ_BUILDING -Ilibquant $(ALL_CFLAGS) $(LDFLAGS) -o $@ tests/gpu/torch_mean_driver.c \
		libquant/torch_mean.c

$(B)/torch_norm_driver: tests/gpu/torch_norm_driver.c libquant/torch_norm.c libquant/torch_norm.h
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CPPFLAGS) -DLQ_BUILDING -Ilibquant $(ALL_CFLAGS) $(LDFLAGS) -o $@ tests/gpu/torch_norm_driver.c \
		libquant/torch_norm.c -lm

# The GPU's reciprocal table (libquant/rcp_approx.c): regenerated on a machine with an NVIDIA GPU and
# compared with the shipped one. nvcc builds the generator anywhere; running it needs the GPU.
$(B)/rcp_approx_gen: kernels/rcp_approx_gen.cu
	@mkdir -p $(@D)
	$(NVCC) -O2 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
		-gencode arch=compute_90,code=compute_90 -o $@ $<

$(B)/bench_gpu: tests/bench/bench_gpu.cu $(B)/libquant.a
	@mkdir -p $(@D)
	@echo "  NVCC    $@"
	$(Q)$(NVCC) $(NVCC_FLAGS) -Ilibquant/include -Ilibquant -Ikernels -DLQ_BUILDING -o $@ tests/bench/bench_gpu.cu $(B)/libquant.a -lzstd \
		-lpthread

.PHONY: rcp-table
rcp-table: $(B)/rcp_approx_gen
	$(B)/rcp_approx_gen $(B)/rcp_approx_delta.bin
	zstd -d -q -c libquant/data/rcp_approx_delta.bin.zst | cmp - $(B)/rcp_approx_delta.bin
	@echo "rcp-table: the GPU reproduces the shipped table"

.PHONY: check test unit cli-tests fuzz-replay interop fuzz
# check: fast (under a minute), what CI runs.
# The unit tests run once on each CPU path this machine has (test_unit -p: scalar, avx2, avx512).
check: all $(B)/test_unit $(B)/stcmp $(FUZZ_TARGETS:%=$(B)/fuzz_replay_%) $(B)/sample_report
	$(Q)for p in $$($(B)/test_unit -p); do echo "unit tests, LQ_CPU=$$p:"; LQ_CPU=$$p $(B)/test_unit || exit 1; done
	$(Q)for t in $(FUZZ_TARGETS); do $(B)/fuzz_replay_$$t tests/fuzz/corpus/$$t || exit 1; done
	$(Q)tests/cli/run.sh $(B)
	$(Q)tests/interop/check_python_reads.sh $(B)
	$(Q)tests/interop/sentence_transformers.sh $(B)
	$(Q)tests/interop/transformers_load.sh $(B)
	$(Q)tests/interop/dequantize.sh $(B)
	$(Q)tests/interop/combine.sh $(B)
	$(Q)tests/qinspect/run.sh $(B)
	$(Q)tests/fidelity/run.sh $(B)
	$(Q)tests/extract/run.sh $(B)
	$(Q)mandoc -Tlint -W warning $(MANPAGES) && echo "man pages: mandoc -Tlint clean"

# test: everything: check, the tests under sanitizers are `make SANITIZE=address,undefined check`.
# bench_gpu --verify-tables: the bf16 NF4 kernel's code table and arithmetic on the CPU (about 10 s).
test: check $(B)/torch_mean_driver $(B)/torch_norm_driver $(if $(filter 1,$(HAVE_CUDA)),$(B)/bench_gpu)
	$(Q)$(if $(filter 1,$(HAVE_CUDA)),$(B)/bench_gpu --verify-tables)
	$(Q)tests/gpu/run.sh $(B)

# A coverage-guided fuzzing session (clang with libFuzzer) of FUZZ_TARGET: safetensors (the header
# parser), peft (adapter_config.json through formats/peft.c), manifest (MANIFEST parsing), bundle
# (tar.zst archives through formats/bundle_read.c), tensors (the logical tensor view) or config (config.json
# through the selection rules and skip lists of formats/hf_select.c). New inputs go to $(B)/fuzz/corpus (or
# corpus-peft), crashes to $(B)/fuzz/; FUZZ_FLAGS adds libFuzzer options, e.g. FUZZ_FLAGS="-jobs=2 -workers=2".
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= safetensors
FUZZ_FLAGS ?=
# Every target compiles its tests/fuzz/fuzz_TARGET.c with all of formats/ instrumented and links libquant as
# built, so that no target's list of sources goes stale; FUZZ_EXTRA_TARGET and FUZZ_OPTS_TARGET add to it.
FUZZ_OPTS_safetensors := -max_len=4096
# peft.c's fmt_read_small goes through the target's wrapper (an exact-size buffer; tests/fuzz/fuzz_peft.c),
# in its fuzzing session and in its replay
FUZZ_EXTRA_peft := -Wl,--wrap=fmt_read_small
FUZZ_OPTS_peft := -max_len=8192 -timeout=10 -dict=tests/fuzz/peft.dict
FUZZ_OPTS_manifest := -max_len=8192 -timeout=10
FUZZ_OPTS_tensors := -max_len=65536 -timeout=10
FUZZ_OPTS_bundle := -max_len=65536 -timeout=30
FUZZ_OPTS_config := -max_len=8192 -timeout=10 -dict=tests/fuzz/config.dict
FUZZ_SRC := $(if $(filter $(FUZZ_TARGET),$(FUZZ_TARGETS)),tests/fuzz/fuzz_$(FUZZ_TARGET).c $(FORMATS_SRC))
FUZZ_CORPUS := $(B)/fuzz/corpus$(if $(filter-out safetensors,$(FUZZ_TARGET)),-$(FUZZ_TARGET))
fuzz: $(B)/libquant.a
	$(if $(FUZZ_SRC),,$(error FUZZ_TARGET=$(FUZZ_TARGET): not one of $(FUZZ_TARGETS)))
	@mkdir -p $(FUZZ_CORPUS)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Ilibquant/include -Iformats $(FUZZ_SRC) $(FUZZ_EXTRA_$(FUZZ_TARGET)) $(B)/libquant.a $(LDLIBS) -o $(B)/fuzz/fuzz_$(FUZZ_TARGET)
	$(B)/fuzz/fuzz_$(FUZZ_TARGET) -max_total_time=$(FUZZ_SECONDS) $(FUZZ_OPTS_$(FUZZ_TARGET)) \
		-artifact_prefix=$(B)/fuzz/ $(FUZZ_FLAGS) $(FUZZ_CORPUS) tests/fuzz/corpus/$(FUZZ_TARGET)

# ----------------------------------------------------------------------------------------- demo
.PHONY: demo
demo: all
	@rm -rf $(B)/demo && mkdir -p $(B)/demo
	$(B)/nf4quant -v fixtures/models/tiny-llama -o $(B)/demo/tiny-llama-nf4
	@echo
	$(B)/nf4quant --dry-run fixtures/models/tiny-llama -o $(B)/demo/unused --quant-type fp4
	@echo
	$(B)/loramerge -v $(B)/demo/tiny-llama-nf4 fixtures/peft/adapters/plain_r8 -o $(B)/demo/tiny-llama-merged
	@echo
	@echo "Wrote $(B)/demo/tiny-llama-nf4 (quantized) and $(B)/demo/tiny-llama-merged (a QLoRA adapter merged):"
	@ls -l $(B)/demo/tiny-llama-nf4 $(B)/demo/tiny-llama-merged

# ---------------------------------------------------------------------------------------- bench
.PHONY: bench
bench: all $(B)/gen_model $(B)/gen_stream $(B)/bench_kernels $(if $(filter 1,$(HAVE_CUDA)),$(B)/bench_gpu)
	$(Q)tests/bench/run.sh $(B)

# -------------------------------------------------------------------------------------- install
.PHONY: install uninstall
install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR)
	$(INSTALL) -m 0755 $(TOOL_BINS) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 tools/qinspect.schema.json $(DESTDIR)$(DATADIR)/
	$(INSTALL) -m 0644 $(B)/libquant.a $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 0755 $(B)/libquant.so $(DESTDIR)$(LIBDIR)/libquant.so.$(VERSION)
	ln -sf libquant.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libquant.so.$(VERSION_MAJOR)
	ln -sf libquant.so.$(VERSION_MAJOR) $(DESTDIR)$(LIBDIR)/libquant.so
	$(INSTALL) -m 0644 libquant/include/libquant.h libquant/include/lq_errors.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 0644 $(B)/libquant.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(INSTALL) -m 0644 $(filter %.1,$(MANPAGES)) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(filter %.5,$(MANPAGES)) $(DESTDIR)$(MANDIR)/man5/

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(DESTDIR)$(LIBDIR)/libquant.a $(DESTDIR)$(LIBDIR)/libquant.so $(DESTDIR)$(LIBDIR)/libquant.so.$(VERSION_MAJOR) \
		$(DESTDIR)$(LIBDIR)/libquant.so.$(VERSION)
	rm -f $(DESTDIR)$(INCLUDEDIR)/libquant.h $(DESTDIR)$(INCLUDEDIR)/lq_errors.h $(DESTDIR)$(PKGCONFIGDIR)/libquant.pc
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man1/%,$(filter %.1,$(MANPAGES)))
	rm -f $(patsubst man/%,$(DESTDIR)$(MANDIR)/man5/%,$(filter %.5,$(MANPAGES)))
	rm -f $(DESTDIR)$(DATADIR)/qinspect.schema.json
	-rmdir $(DESTDIR)$(DATADIR) 2>/dev/null

# ----------------------------------------------------------------------------------------- misc
.PHONY: clean help lint-man
clean:
	rm -rf $(B)

lint-man:
	mandoc -Tlint -W warning $(MANPAGES)

help:
	@echo "make            build libquant, the formats library and the tools into $(B)/"
	@echo "make check      fast tests (unit, golden, fuzz corpus, command line, Python interop)"
	@echo "make test       everything: check, then the GPU tests (skipped, and said so, without a GPU)"
	@echo "make demo       quantize the model shipped in fixtures/ and show the result"
	@echo "make bench      throughput and memory benchmarks (results in bench/)"
	@echo "make fuzz       fuzz FUZZ_TARGET ($(FUZZ_TARGETS)) for FUZZ_SECONDS"
	@echo "make install    install into PREFIX=$(PREFIX) (DESTDIR honoured); make uninstall"
	@echo "make lint-man   check the man pages with mandoc -Tlint"
	@echo "make clean      remove $(B)/"
	@echo "Variables: V=1 (commands), WERROR=1, SANITIZE=address,undefined, PREFIX, DESTDIR, CC, CFLAGS"

-include $(shell find $(B) -name '*.d' 2>/dev/null)
